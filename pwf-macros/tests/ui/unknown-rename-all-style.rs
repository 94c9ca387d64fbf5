use pwf::PluginConfig;

#[derive(PluginConfig)]
#[config(rename_all = "camelcase")]
struct Config {
    dispatch_count: u32,
}

fn main() {}
