use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(default = 1)]
    #[config(default = 2)]
    dispatch_count: u32,
}

fn main() {}
