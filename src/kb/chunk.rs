//! Splitting documents into retrievable chunks that follow headings.
//!
//! Every format is first normalised to Markdown-like text (HTML headings become `#` lines); a
//! chunk never crosses a heading, keeps the document title and its heading path, and records
//! its byte span in the normalised text so a citation can point at the exact passage. Sections
//! longer than `max_chars` are split at paragraph (then sentence, then character) boundaries,
//! and consecutive pieces of one section overlap by up to `overlap_chars`.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
    Html,
}

impl Format {
    /// By the path's extension; `None` for files the knowledge base does not read.
    pub fn of_path(path: &std::path::Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }

    fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    pub max_chars: usize,
    pub overlap_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            max_chars: 1200,
            overlap_chars: 150,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Headings from the document's top section down to this chunk's own.
    pub heading_path: Vec<String>,
    pub text: String,
    /// Byte range of `text` in the normalised document.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDocument {
    pub title: String,
    /// The normalised text that chunk spans index into.
    pub text: String,
    pub chunks: Vec<Chunk>,
}

/// Normalises `raw` and chunks it; `fallback_title` (usually the file stem) is used when the
/// document has no title of its own.
pub fn chunk_document(
    raw: &str,
    format: Format,
    fallback_title: &str,
    options: ChunkOptions,
) -> ChunkedDocument {
    let (text, html_title) = match format {
        Format::Markdown => (raw.replace("\r\n", "\n"), None),
        Format::Text => (mark_text_headings(&raw.replace("\r\n", "\n")), None),
        Format::Html => html_to_text(raw),
    };
    let sections = sections(&text);
    let title = sections
        .iter()
        .find_map(|s| s.heading_path.first().cloned())
        .or(html_title)
        .unwrap_or_else(|| fallback_title.to_owned());
    let mut chunks = Vec::new();
    for section in sections {
        for span in split(&text, section.body.clone(), options) {
            chunks.push(Chunk {
                heading_path: section.heading_path.clone(),
                text: text[span.clone()].to_owned(),
                span,
            });
        }
    }
    ChunkedDocument {
        title,
        text,
        chunks,
    }
}

struct Section {
    heading_path: Vec<String>,
    /// The section's text without its heading line, trimmed.
    body: Range<usize>,
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && rest.starts_with(' ')).then(|| (level, rest.trim()))
}

fn sections(text: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body_start = 0;
    let mut offset = 0;
    let mut in_code = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if let Some((level, title)) = heading(line.trim_end()).filter(|_| !in_code) {
            push_section(&mut sections, text, &path, body_start..offset);
            path.retain(|(l, _)| *l < level);
            path.push((level, title.to_owned()));
            body_start = offset + line.len();
        }
        offset += line.len();
    }
    push_section(&mut sections, text, &path, body_start..text.len());
    sections
}

fn push_section(
    sections: &mut Vec<Section>,
    text: &str,
    path: &[(usize, String)],
    range: Range<usize>,
) {
    let body = trim_range(text, range);
    if !body.is_empty() {
        sections.push(Section {
            heading_path: path.iter().map(|(_, t)| t.clone()).collect(),
            body,
        });
    }
}

fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    start..end.max(start)
}

/// Pieces of at most `max_chars` (unless one word is longer), preferring paragraph, then
/// sentence, then word boundaries; each piece after the first starts up to `overlap_chars` back.
fn split(text: &str, range: Range<usize>, options: ChunkOptions) -> Vec<Range<usize>> {
    let max = options.max_chars.max(1);
    let mut pieces = Vec::new();
    let mut start = range.start;
    while range.end - start > max {
        let window = &text[start..floor_boundary(text, start + max)];
        let cut = ["\n\n", ". ", "\n", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).filter(|&i| i > 0).map(|i| i + sep.len()))
            .unwrap_or(window.len());
        let end = start + cut;
        pieces.push(trim_range(text, start..end));
        let overlap_from = floor_boundary(
            text,
            end.saturating_sub(options.overlap_chars).max(start + 1),
        );
        // Start the overlap at a word boundary so no piece begins mid-word.
        let next = text[overlap_from..end]
            .find(' ')
            .map_or(end, |i| overlap_from + i + 1);
        start = if next >= end || next <= start {
            end
        } else {
            next
        };
    }
    pieces.push(trim_range(text, start..range.end));
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Plain text has no heading syntax: a short line without final punctuation, followed by text
/// and preceded by a blank line (or the start), is taken as a heading; the first one is the title.
fn mark_text_headings(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 64);
    let mut seen_title = false;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let before_blank = i == 0 || lines[i - 1].trim().is_empty();
        let next_has_text = lines.get(i + 1).is_some_and(|l| !l.trim().is_empty());
        let looks_like_heading = !trimmed.is_empty()
            && trimmed.len() <= 60
            && !trimmed.ends_with(['.', ':', ',', ';', '?', '!'])
            && before_blank
            && (next_has_text || !seen_title);
        if looks_like_heading {
            out.push_str(if seen_title { "## " } else { "# " });
            seen_title = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A lean HTML reader: headings become `#` lines, block elements line breaks, scripts and
/// styles vanish, common entities are decoded. Returns the text and the `<title>`.
fn html_to_text(html: &str) -> (String, Option<String>) {
    let mut out = String::with_capacity(html.len());
    let mut title = None;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]).replace(['\n', '\r'], " "));
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        rest = &rest[open + close + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        match name.as_str() {
            "script" | "style" | "title" if !closing => {
                let end = rest
                    .to_ascii_lowercase()
                    .find(&format!("</{name}"))
                    .unwrap_or(rest.len());
                if name == "title" {
                    title = Some(decode_entities(rest[..end].trim()));
                }
                rest = &rest[end..];
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                if closing {
                    out.push('\n');
                } else {
                    let level = usize::from(name.as_bytes()[1] - b'0');
                    out.push_str("\n\n");
                    out.push_str(&"#".repeat(level));
                    out.push(' ');
                }
            }
            "p" | "div" | "section" | "article" | "ul" | "ol" | "table" | "tr" => {
                out.push_str("\n\n")
            }
            "li" if !closing => out.push_str("\n- "),
            "br" => out.push('\n'),
            _ => {}
        }
    }
    out.push_str(&decode_entities(rest));
    // Collapse the runs of blank lines and spaces that markup leaves behind.
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(&line);
    }
    text.push('\n');
    (text, title)
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handbook(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/examples/handbook/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn markdown_chunks_follow_headings_and_keep_their_path() {
        let doc = chunk_document(
            &handbook("hr/parental-leave.md"),
            Format::Markdown,
            "x",
            ChunkOptions::default(),
        );
        assert_eq!(doc.title, "Parental Leave Policy");
        let paid = doc
            .chunks
            .iter()
            .find(|c| c.text.contains("20 weeks"))
            .unwrap();
        assert_eq!(
            paid.heading_path,
            vec!["Parental Leave Policy", "Paid leave"]
        );
        assert!(
            !paid.text.contains("Unpaid extension"),
            "a chunk never crosses a heading"
        );
        for chunk in &doc.chunks {
            assert_eq!(
                &doc.text[chunk.span.clone()],
                chunk.text,
                "span points at the chunk"
            );
            assert!(!chunk.text.starts_with('#'));
        }
    }

    #[test]
    fn html_headings_become_sections() {
        let doc = chunk_document(
            &handbook("it/vpn-and-remote-access.html"),
            Format::Html,
            "x",
            ChunkOptions::default(),
        );
        assert_eq!(doc.title, "VPN and Remote Access");
        let personal = doc
            .chunks
            .iter()
            .find(|c| c.text.contains("may not connect"))
            .unwrap();
        assert_eq!(
            personal.heading_path,
            vec!["VPN and Remote Access", "Personal devices"]
        );
        assert!(
            doc.chunks.iter().all(|c| !c.text.contains('<')),
            "no markup left"
        );
    }

    #[test]
    fn plain_text_headings_are_recognised() {
        let doc = chunk_document(
            &handbook("hr/sick-leave.txt"),
            Format::Text,
            "sick-leave",
            ChunkOptions::default(),
        );
        assert_eq!(doc.title, "SICK LEAVE");
        let note = doc
            .chunks
            .iter()
            .find(|c| c.text.contains("3 consecutive"))
            .unwrap();
        assert_eq!(note.heading_path, vec!["SICK LEAVE", "Doctor's note"]);
    }

    #[test]
    fn long_sections_split_with_overlap_within_the_limit() {
        let paragraph = "Acme staff accrue leave monthly. Unused days expire in March. ";
        let text = format!("# Policy\n\n## Long\n\n{}", paragraph.repeat(40));
        let options = ChunkOptions {
            max_chars: 300,
            overlap_chars: 60,
        };
        let doc = chunk_document(&text, Format::Markdown, "x", options);
        assert!(doc.chunks.len() > 5);
        for pair in doc.chunks.windows(2) {
            assert!(pair[0].text.len() <= 300);
            assert!(
                pair[1].span.start < pair[0].span.end,
                "consecutive pieces overlap"
            );
            assert!(pair[0].span.end - pair[1].span.start <= 60);
        }
        let covered_to = doc.chunks.last().unwrap().span.end;
        assert_eq!(
            covered_to,
            doc.text.trim_end().len(),
            "nothing at the end is lost"
        );
    }

    #[test]
    fn a_document_without_headings_takes_the_fallback_title() {
        let doc = chunk_document(
            "just one line of text.\n",
            Format::Markdown,
            "notes",
            ChunkOptions::default(),
        );
        assert_eq!(doc.title, "notes");
        assert_eq!(doc.chunks.len(), 1);
        assert!(doc.chunks[0].heading_path.is_empty());
    }

    #[test]
    fn chunks_cover_every_word_of_every_handbook_document() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/handbook");
        let mut files = Vec::new();
        crate::kb::ingest::walk(&root, &mut files).unwrap();
        let mut checked = 0;
        for path in files {
            let Some(format) = Format::of_path(&path) else {
                continue;
            };
            let raw = std::fs::read_to_string(&path).unwrap();
            let doc = chunk_document(
                &raw,
                format,
                "x",
                ChunkOptions {
                    max_chars: 200,
                    overlap_chars: 40,
                },
            );
            let mut covered = vec![false; doc.text.len()];
            for chunk in &doc.chunks {
                assert!(
                    chunk.text.len() <= 200,
                    "{}: chunk of {} bytes",
                    path.display(),
                    chunk.text.len()
                );
                covered[chunk.span.clone()]
                    .iter_mut()
                    .for_each(|c| *c = true);
            }
            let mut offset = 0;
            for line in doc.text.split_inclusive('\n') {
                if heading(line.trim_end()).is_none() {
                    for (i, b) in line.bytes().enumerate() {
                        assert!(
                            b.is_ascii_whitespace() || covered[offset + i],
                            "{}: text lost near {:?}",
                            path.display(),
                            line
                        );
                    }
                }
                offset += line.len();
            }
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} handbook documents found");
    }
}
