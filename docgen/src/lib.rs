// SPDX-License-Identifier: GPL-2.0
//! The man pages and shell completion scripts of the daedalus programs (`daedalus`,
//! `daedalusd`), generated from their clap command lines: the one generator both programs call
//! (`daedalus generate-docs DIR` and `daedalus completions SHELL`, `daedalusd --generate-docs
//! DIR`; `make generated-docs`, the Debian packages).
//!
//! A function the binaries call rather than a build script: the command lines are defined in
//! the binaries' own sources, which a build script cannot see without duplicating them, and the
//! pages do not depend on the target architecture (a cross build takes them from a native one).
#![deny(missing_docs)]

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Command;
pub use clap_complete::Shell;

/// The shells whose completion scripts [`write_docs`] writes, with their directory under
/// `completions/` and the file name of program `name`'s script there.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The file name of program `name`'s completion script for `shell` (what the shell's completion
/// directory expects: `name`, `_name`, `name.fish`).
pub fn completion_file(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
}

/// The directory of `shell`'s scripts under `completions/` (`bash`, `zsh`, `fish`...).
pub fn completion_dir(shell: Shell) -> String {
    shell.to_string()
}

/// Writes program `name`'s completion script for `shell` to `out`.
pub fn write_completion(shell: Shell, cmd: &mut Command, name: &str, out: &mut dyn Write) {
    clap_complete::generate(shell, cmd, name, out);
}

/// What [`write_docs`] writes for a program.
pub struct Program<'a> {
    /// Its name (`daedalus`, `daedalusd`): the page's and the scripts' names.
    pub name: &'a str,
    /// Its man section (`1` for commands, `8` for daemons).
    pub section: &'a str,
    /// One page `NAME-SUBCOMMAND.SECTION` per visible subcommand as well (`git`-style).
    pub subcommand_pages: bool,
}

/// Writes `out/man/NAME.SECTION` (and, with `subcommand_pages`, one page per visible
/// subcommand) and `out/completions/{bash,zsh,fish}/...` for program `p`, whose command line is
/// `cmd`.
pub fn write_docs(cmd: Command, p: &Program<'_>, out: &Path) -> Result<()> {
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("cannot create {}", man.display()))?;
    let mut cmd = cmd;
    cmd.build();
    let write_page = |cmd: Command, name: &str| -> Result<()> {
        let path = man.join(format!("{name}.{}", p.section));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .title(name.to_uppercase())
            .section(p.section)
            .source(format!("daedalus {}", env!("CARGO_PKG_VERSION")))
            .manual("daedalus")
            .render(&mut buf)
            .context("cannot render a man page")?;
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))
    };
    if p.subcommand_pages {
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let name = format!("{}-{}", p.name, sub.get_name());
            write_page(sub.clone().display_name(name.clone()), &name)?;
        }
    }
    write_page(cmd.clone(), p.name)?;
    for shell in SHELLS {
        let dir = out.join("completions").join(completion_dir(shell));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut buf = Vec::new();
        write_completion(shell, &mut cmd, p.name, &mut buf);
        let path = dir.join(completion_file(shell, p.name));
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(completion_file(Shell::Bash, "daedalus"), "daedalus");
        assert_eq!(completion_file(Shell::Zsh, "daedalus"), "_daedalus");
        assert_eq!(completion_file(Shell::Fish, "daedalusd"), "daedalusd.fish");
        assert_eq!(completion_dir(Shell::Fish), "fish");
    }

    #[test]
    fn pages_and_scripts() {
        let cmd = Command::new("prog")
            .about("A program")
            .subcommand(Command::new("run").about("Run it"))
            .subcommand(Command::new("secret").hide(true));
        let dir = std::env::temp_dir().join(format!("docgen-{}", std::process::id()));
        let p = Program {
            name: "prog",
            section: "1",
            subcommand_pages: true,
        };
        write_docs(cmd, &p, &dir).expect("written");
        assert!(dir.join("man/prog.1").is_file());
        assert!(dir.join("man/prog-run.1").is_file());
        assert!(!dir.join("man/prog-secret.1").exists());
        for f in ["bash/prog", "zsh/_prog", "fish/prog.fish"] {
            assert!(dir.join("completions").join(f).is_file(), "{f}");
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
