use pwf::PluginConfig;

#[derive(PluginConfig)]
union Config {
    count: u32,
    ratio: f32,
}

fn main() {}
