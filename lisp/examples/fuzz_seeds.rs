//! Writes every sample message into a directory, one file each: the seed
//! corpus of the fuzz targets. `cargo run -p lisp --example fuzz_seeds DIR`

#[path = "../tests/samples/mod.rs"]
mod samples;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: fuzz_seeds DIR (where the seed files go)");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes, _) in samples::all() {
        std::fs::write(std::path::Path::new(&dir).join(name), bytes)?;
    }
    Ok(())
}
