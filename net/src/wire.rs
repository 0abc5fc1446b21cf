//! How an exit reason travels in an `exited` frame's name field.

use procession::ExitReason;

/// The longest panic message sent: a frame field holds at most 64 KiB.
const MAX_MESSAGE: usize = 4096;

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The reason's wire name: `normal`, `lost`, `not_found`, `abandoned`, or `panicked:` and the
/// panic message.
pub(crate) fn encode_reason(reason: &ExitReason) -> String {
    match reason {
        ExitReason::Normal => "normal".to_owned(),
        ExitReason::Panicked(message) => format!("panicked:{}", truncated(message, MAX_MESSAGE)),
        ExitReason::Lost => "lost".to_owned(),
        ExitReason::NotFound => "not_found".to_owned(),
        ExitReason::Abandoned => "abandoned".to_owned(),
        // A reason this version does not know is reported as the node knowing no more.
        _ => "lost".to_owned(),
    }
}

/// The reason a wire name stands for; `None` for a name this version does not know.
pub(crate) fn decode_reason(name: &str) -> Option<ExitReason> {
    Some(match name {
        "normal" => ExitReason::Normal,
        "lost" => ExitReason::Lost,
        "not_found" => ExitReason::NotFound,
        "abandoned" => ExitReason::Abandoned,
        _ => ExitReason::Panicked(name.strip_prefix("panicked:")?.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips() {
        for reason in [
            ExitReason::Normal,
            ExitReason::Panicked("boom: at line 3".into()),
            ExitReason::Lost,
            ExitReason::NotFound,
            ExitReason::Abandoned,
        ] {
            assert_eq!(decode_reason(&encode_reason(&reason)), Some(reason));
        }
        assert_eq!(decode_reason("exploded"), None);
        let long = ExitReason::Panicked("é".repeat(100_000).into());
        assert_eq!(encode_reason(&long).len(), "panicked:".len() + MAX_MESSAGE);
    }
}
