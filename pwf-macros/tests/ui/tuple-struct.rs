use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config(String, u32);

fn main() {}
