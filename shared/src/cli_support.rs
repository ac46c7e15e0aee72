//! What both binaries (`pseal`, `pseal-central`) print and write alike: counted nouns, and their
//! man pages from the clap definitions (feature `manpages`).

/// `n` and the singular or plural noun: `1 bundle`, `3 bundles`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Why the man pages could not be written.
#[cfg(feature = "manpages")]
#[derive(Debug, thiserror::Error)]
pub enum ManpageError {
    /// The folder could not be created.
    #[error("man page folder {}", path.display())]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A page could not be rendered or written.
    #[error("man page {}", path.display())]
    Page {
        /// The page's file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Writes one man page per subcommand of `cli` (`PROGRAM-SUB.1`, invoked as `PROGRAM SUB`) and
/// one for the whole program (`PROGRAM.1`) into `dir`, creating it; returns the files written,
/// in that order.
#[cfg(feature = "manpages")]
pub fn write_manpages(
    cli: clap::Command,
    program: &str,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, ManpageError> {
    std::fs::create_dir_all(dir).map_err(|source| ManpageError::Folder {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let mut write = |cmd: clap::Command, name: String| -> Result<(), ManpageError> {
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .and_then(|()| std::fs::write(&path, page))
            .map_err(|source| ManpageError::Page {
                path: path.clone(),
                source,
            })?;
        written.push(path);
        Ok(())
    };
    for sub in cli.get_subcommands() {
        let name = format!("{program}-{}", sub.get_name());
        let bin = format!("{program} {}", sub.get_name());
        write(sub.clone().display_name(name.clone()).bin_name(bin), name)?;
    }
    write(cli, program.to_string())?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(plural(1, "bundle", "bundles"), "1 bundle");
        assert_eq!(plural(0, "bundle", "bundles"), "0 bundles");
        assert_eq!(plural(2, "patient", "patients"), "2 patients");
    }
}
