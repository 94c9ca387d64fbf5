use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(default = "ten")]
    dispatch_count: u32,
}

fn main() {}
