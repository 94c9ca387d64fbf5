use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(range = 1..=100)]
    dispatch_cluster: String,
}

fn main() {}
