use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(defualt = 10)]
    dispatch_count: u32,
}

fn main() {}
