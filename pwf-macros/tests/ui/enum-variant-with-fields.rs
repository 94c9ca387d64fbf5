use pwf::PluginConfig;

#[derive(PluginConfig)]
enum Mode {
    Allow,
    Deny(String),
}

fn main() {}
