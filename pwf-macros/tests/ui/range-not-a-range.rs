use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(range = 100)]
    dispatch_count: u32,
}

fn main() {}
