use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(non_empty)]
    dispatch_count: u32,
}

fn main() {}
