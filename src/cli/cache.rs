//! `luabundle cache prune`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use luabundle::cache::{Cache, DEFAULT_MAX_SIZE};

use super::human_size;

/// Compile cache commands.
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Remove the oldest entries until the cache is under a size.
    #[command(
        after_help = "Examples:\n  luabundle cache prune --max-size 64M\n  luabundle cache prune --cache-dir target/luabundle-cache --max-size 0   # empty it"
    )]
    Prune(PruneArgs),
}

/// `luabundle cache prune` options.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// The cache directory.
    #[arg(long, value_name = "DIR", default_value = ".luabundle-cache")]
    cache_dir: PathBuf,
    /// Size to stay under, in bytes, or with a K, M or G suffix (0 empties the cache).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_SIZE.to_string(), value_parser = parse_size)]
    max_size: String,
}

fn parse_size(text: &str) -> Result<String, String> {
    size_in_bytes(text).map(|_| text.to_string())
}

fn size_in_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("unknown size unit {unit:?} (use K, M or G)")),
    };
    let value: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size"))?;
    value.checked_shl(shift).ok_or_else(|| format!("{text:?} is too large"))
}

pub fn cache(command: CacheCommand) -> anyhow::Result<i32> {
    match command {
        CacheCommand::Prune(args) => {
            let max_size = size_in_bytes(&args.max_size).map_err(anyhow::Error::msg)?;
            if !args.cache_dir.is_dir() {
                anyhow::bail!(
                    "no cache directory at {} (builds keep it in .luabundle-cache beside the output unless --cache-dir says otherwise)",
                    args.cache_dir.display()
                );
            }
            let cache = Cache::new(&args.cache_dir);
            let report = cache.prune(max_size)?;
            eprintln!(
                "removed {} entries ({}); {} entries ({}) left in {}",
                report.removed_entries,
                human_size(report.removed_bytes),
                report.kept_entries,
                human_size(report.kept_bytes),
                args.cache_dir.display()
            );
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(size_in_bytes("512"), Ok(512));
        assert_eq!(size_in_bytes("64K"), Ok(64 << 10));
        assert_eq!(size_in_bytes("256M"), Ok(256 << 20));
        assert_eq!(size_in_bytes("1GiB"), Ok(1 << 30));
        assert!(size_in_bytes("12X").is_err());
        assert!(size_in_bytes("M").is_err());
    }
}
