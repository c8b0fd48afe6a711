//! Reading an import file (C-2), with no I/O: its encoding (UTF-8 with or without BOM, or
//! GBK) detected and decoded in chunks, and the decoded text cut into blocks of whole CSV
//! records.

use crm_kit::Error;
use encoding_rs::{CoderResult, GBK, UTF_8};

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 starting with a byte-order mark (as Excel writes "CSV UTF-8").
    Utf8Bom,
    /// GBK (GB 2312 and its extension), as Chinese Excel writes plain "CSV".
    Gbk,
}

impl Encoding {
    /// Detects the encoding from the file's first bytes (at least a few KiB when the file has
    /// them): a UTF-8 BOM; else UTF-8 if the bytes are valid UTF-8 (a sequence cut at the end
    /// is allowed); else GBK.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Self::Utf8Bom;
        }
        match std::str::from_utf8(head) {
            Ok(_) => Self::Utf8,
            // valid up to a multi-byte character the sample cut in two
            Err(e) if e.error_len().is_none() => Self::Utf8,
            Err(_) => Self::Gbk,
        }
    }
}

/// Turns a file's bytes, chunk by chunk, into text: a chunk may end inside a character.
pub struct Decoder {
    inner: encoding_rs::Decoder,
    /// Whether the decoder met bytes its encoding does not allow.
    pub malformed: bool,
}

impl Decoder {
    /// A decoder for `encoding` (a UTF-8 BOM is removed).
    pub fn new(encoding: Encoding) -> Self {
        let inner = match encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => UTF_8.new_decoder_with_bom_removal(),
            Encoding::Gbk => GBK.new_decoder_without_bom_handling(),
        };
        Self {
            inner,
            malformed: false,
        }
    }

    /// Decodes `bytes` onto `out`; `last` for the file's final chunk.
    pub fn feed(&mut self, bytes: &[u8], out: &mut String, last: bool) {
        let need = self
            .inner
            .max_utf8_buffer_length(bytes.len())
            .unwrap_or(bytes.len() * 3 + 16);
        out.reserve(need);
        let mut rest = bytes;
        loop {
            let (result, read, replaced) = self.inner.decode_to_string(rest, out, last);
            self.malformed |= replaced;
            rest = &rest[read..];
            match result {
                CoderResult::InputEmpty => break,
                CoderResult::OutputFull => out.reserve(rest.len() * 3 + 16),
            }
        }
    }
}

/// Why a file cannot be imported at all.
pub(super) fn file_error(reason: impl Into<String>) -> Error {
    Error::invalid("file", reason)
}

/// Cuts decoded text into blocks of whole CSV records: a newline ends a record only outside
/// quotes, so a quoted cell may hold line breaks and a chunk may end anywhere.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: String,
    scanned: usize,
    in_quotes: bool,
    boundary: usize,
}

impl Splitter {
    /// Adds text; returns the whole records it completes, if any.
    pub fn push(&mut self, text: &str) -> Option<String> {
        self.pending.push_str(text);
        for (i, ch) in self.pending[self.scanned..].char_indices() {
            match ch {
                '"' => self.in_quotes = !self.in_quotes,
                '\n' if !self.in_quotes => self.boundary = self.scanned + i + 1,
                _ => {}
            }
        }
        self.scanned = self.pending.len();
        if self.boundary == 0 {
            return None;
        }
        let done: String = self.pending.drain(..self.boundary).collect();
        self.scanned -= self.boundary;
        self.boundary = 0;
        Some(done)
    }

    /// The last record, if the file did not end with a newline.
    pub fn finish(self) -> String {
        self.pending
    }
}

/// The records of a block of whole CSV records (blank lines skipped).
pub fn records(block: &str) -> Result<Vec<csv::StringRecord>, csv::Error> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(block.as_bytes())
        .records()
        .filter(|r| {
            r.as_ref()
                .map_or(true, |r| !(r.len() == 1 && r[0].trim().is_empty()))
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Reads a whole file as the import will: detect, decode, parse.
    pub(crate) fn read(bytes: &[u8]) -> (Encoding, Vec<csv::StringRecord>) {
        let encoding = Encoding::detect(&bytes[..bytes.len().min(4096)]);
        let mut decoder = Decoder::new(encoding);
        let mut text = String::new();
        // in small chunks, so characters are cut between them
        let chunks: Vec<&[u8]> = bytes.chunks(7).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            decoder.feed(chunk, &mut text, i + 1 == chunks.len());
        }
        assert!(!decoder.malformed);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        (encoding, reader.records().map(Result::unwrap).collect())
    }

    #[test]
    fn utf8_with_and_without_bom_and_gbk_files_read_the_same() {
        let text = "客户名称,区域,联系电话\n杭州云帆软件股份有限公司,华东,0571-8765 4321\n";
        let plain = read(text.as_bytes());
        let mut with_bom = vec![0xEF, 0xBB, 0xBF];
        with_bom.extend_from_slice(text.as_bytes());
        let bom = read(&with_bom);
        let (gbk_bytes, _, unmappable) = GBK.encode(text);
        assert!(!unmappable);
        let gbk = read(&gbk_bytes);
        assert_eq!(
            (plain.0, bom.0, gbk.0),
            (Encoding::Utf8, Encoding::Utf8Bom, Encoding::Gbk)
        );
        assert_eq!(plain.1, bom.1);
        assert_eq!(plain.1, gbk.1);
        assert_eq!(&gbk.1[1][0], "杭州云帆软件股份有限公司");
    }

    #[test]
    fn records_are_cut_only_outside_quotes_whatever_the_chunks() {
        let text = "name,address\n\"Contoso, Ltd\",\"line one\nline two\"\n\nacme,x";
        for size in [1, 2, 5, 64] {
            let mut splitter = Splitter::default();
            let mut got = Vec::new();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(size) {
                let piece: String = piece.iter().collect();
                if let Some(block) = splitter.push(&piece) {
                    got.extend(records(&block).unwrap());
                }
            }
            got.extend(records(&splitter.finish()).unwrap());
            assert_eq!(got.len(), 3, "chunks of {size}");
            assert_eq!(&got[1][1], "line one\nline two");
            assert_eq!(&got[2][0], "acme");
        }
    }
}
