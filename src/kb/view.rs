//! A cited chunk shown in its document (`GET /v1/sources/{id}`): the document put back
//! together from its chunks, in span order without the overlap between neighbours, cut into
//! segments so the cited chunk's text can be highlighted where it stands.

use serde::Serialize;

use crate::store::{Database, StoreError, StoredChunk};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceView {
    pub id: i64,
    pub title: String,
    pub path: String,
    pub collection: String,
    /// The cited chunk's headings, joined with " > ".
    pub heading: String,
    pub segments: Vec<Segment>,
}

/// A run of the document's text under one heading path, cited or not.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Segment {
    pub heading: String,
    pub text: String,
    pub cited: bool,
}

/// Chunk `id` in its document; `None` when no chunk has that id (re-ingested since).
pub async fn source_view(db: &Database, id: i64) -> Result<Option<SourceView>, StoreError> {
    let chunks = db.document_chunks(id).await?;
    Ok(view(&chunks, id))
}

fn view(chunks: &[StoredChunk], id: i64) -> Option<SourceView> {
    let cited = chunks.iter().find(|c| c.id == id)?;
    let cited_span = cited.chunk.span.clone();
    let mut segments: Vec<Segment> = Vec::new();
    let mut covered = 0;
    for chunk in chunks {
        let span = &chunk.chunk.span;
        if span.end <= covered {
            continue;
        }
        let start = span.start.max(covered);
        // Cut where the cited span starts and ends, so those pieces can be marked.
        let mut cuts = vec![start];
        cuts.extend(
            [cited_span.start, cited_span.end]
                .into_iter()
                .filter(|&cut| start < cut && cut < span.end),
        );
        cuts.push(span.end);
        for pair in cuts.windows(2) {
            let (from, to) = (pair[0] - span.start, pair[1] - span.start);
            let Some(text) = chunk.chunk.text.get(from..to) else {
                continue;
            };
            let piece = Segment {
                heading: chunk.chunk.heading_path.clone(),
                text: text.to_owned(),
                cited: pair[0] >= cited_span.start && pair[1] <= cited_span.end,
            };
            match segments.last_mut() {
                Some(last) if last.heading == piece.heading && last.cited == piece.cited => {
                    last.text.push_str(&piece.text);
                }
                _ => segments.push(piece),
            }
        }
        covered = span.end;
    }
    Some(SourceView {
        id,
        title: cited.title.clone(),
        path: cited.document_path.clone(),
        collection: cited.collection.clone(),
        heading: cited.chunk.heading_path.clone(),
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ChunkRecord;

    fn chunk(id: i64, heading: &str, text: &str, start: usize) -> StoredChunk {
        StoredChunk {
            id,
            document_path: "hr/leave.md".into(),
            collection: "hr".into(),
            title: "Leave".into(),
            chunk: ChunkRecord {
                ordinal: id as u32,
                heading_path: heading.into(),
                text: text.into(),
                span: start..start + text.len(),
                embedding: Vec::new(),
                flagged: None,
            },
        }
    }

    #[test]
    fn the_cited_chunk_is_marked_in_its_document_without_the_overlap_twice() {
        let text = "Paid leave is 20 weeks. Apply early. Tell your manager.";
        // Two chunks of one section overlapping on "Apply early. ", then another section.
        let chunks = [
            chunk(1, "Leave > Paid", &text[..37], 0),
            chunk(2, "Leave > Paid", &text[24..], 24),
            chunk(3, "Leave > Apply", "Use the form.", 60),
        ];
        let view = view(&chunks, 2).unwrap();
        assert_eq!(view.heading, "Leave > Paid");
        assert_eq!(
            view.segments,
            vec![
                Segment {
                    heading: "Leave > Paid".into(),
                    text: "Paid leave is 20 weeks. ".into(),
                    cited: false
                },
                Segment {
                    heading: "Leave > Paid".into(),
                    text: "Apply early. Tell your manager.".into(),
                    cited: true
                },
                Segment {
                    heading: "Leave > Apply".into(),
                    text: "Use the form.".into(),
                    cited: false
                },
            ]
        );
        let joined: String = view
            .segments
            .iter()
            .take(2)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(joined, text, "the overlap is shown once");
        assert!(super::view(&chunks, 9).is_none());
    }
}
