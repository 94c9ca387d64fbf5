use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(one_of = ["GET", 5])]
    method: String,
}

fn main() {}
