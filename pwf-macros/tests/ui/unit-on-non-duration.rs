use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(unit = "ms")]
    timeout: u64,
}

fn main() {}
