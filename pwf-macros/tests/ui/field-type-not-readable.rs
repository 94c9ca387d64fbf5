use pwf::PluginConfig;

struct Cluster;

#[derive(PluginConfig)]
struct Config {
    cluster: Cluster,
}

fn main() {}
