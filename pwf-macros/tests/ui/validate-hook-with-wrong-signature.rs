use pwf::PluginConfig;

fn check(count: u32) -> bool {
    count > 0
}

#[derive(PluginConfig)]
struct Config {
    #[config(validate = check)]
    dispatch_count: u32,
}

fn main() {}
