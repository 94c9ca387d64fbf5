use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config<T> {
    value: T,
}

fn main() {}
