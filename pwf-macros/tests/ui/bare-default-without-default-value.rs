use pwf::PluginConfig;

#[derive(serde::Deserialize)]
struct Cluster {
    name: String,
}

#[derive(PluginConfig)]
struct Config {
    #[config(default)]
    cluster: Cluster,
}

fn main() {}
