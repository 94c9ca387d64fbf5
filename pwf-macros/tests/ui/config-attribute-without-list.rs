use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config]
    dispatch_count: u32,
}

fn main() {}
