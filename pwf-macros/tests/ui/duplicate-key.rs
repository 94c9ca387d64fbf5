use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    dispatch_count: u32,
    #[config(rename = "dispatchCount")]
    count: u32,
}

fn main() {}
