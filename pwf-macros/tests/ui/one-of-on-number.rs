use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(one_of = ["1", "2"])]
    dispatch_count: u32,
}

fn main() {}
