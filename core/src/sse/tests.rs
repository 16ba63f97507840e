use super::*;

fn events(chunks: &[&[u8]]) -> Vec<Event> {
    let mut p = Parser::default();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c).unwrap();
        while let Some(e) = p.next_event() {
            out.push(e);
        }
    }
    out
}

fn ev(event: &str, data: &str, id: &str) -> Event {
    Event {
        event: event.into(),
        data: data.into(),
        id: id.into(),
        retry: None,
    }
}

#[test]
fn fields_multi_line_data_and_defaults() {
    let got = events(&[b"event: add\ndata: a\ndata:  b\ndata\nid: 7\n\ndata: next\n\n"]);
    assert_eq!(got, [ev("add", "a\n b\n", "7"), ev("message", "next", "7")]);
}

#[test]
fn every_line_end_and_splits_anywhere() {
    let text: &[u8] = b"data: 1\r\n\r\ndata: 2\r\rdata: 3\n\ndata:4\r\n\r\n";
    let want = [
        ev("message", "1", ""),
        ev("message", "2", ""),
        ev("message", "3", ""),
        ev("message", "4", ""),
    ];
    assert_eq!(events(&[text]), want);
    // Every split point, CRLF across chunks included.
    for i in 0..=text.len() {
        assert_eq!(events(&[&text[..i], &text[i..]]), want, "split at {i}");
    }
    // One byte at a time.
    let bytes: Vec<&[u8]> = text.chunks(1).collect();
    assert_eq!(events(&bytes), want);
}

#[test]
fn comments_unknown_fields_and_no_space() {
    let got = events(&[b": keep-alive\nfoo: bar\ndata:x\n:\n\n"]);
    assert_eq!(got, [ev("message", "x", "")]);
}

#[test]
fn blank_blocks_without_data_dispatch_nothing() {
    // An event type without data is reset, not carried to the next event.
    let got = events(&[b"event: lonely\n\n\n\ndata: d\n\n"]);
    assert_eq!(got, [ev("message", "d", "")]);
    // `data:` with an empty value is an event with empty data.
    assert_eq!(events(&[b"data:\n\n"]), [ev("message", "", "")]);
}

#[test]
fn id_persists_resets_and_refuses_nul() {
    let got = events(&[b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\0y\ndata: d\n\n"]);
    assert_eq!(
        got,
        [
            ev("message", "a", "1"),
            ev("message", "b", "1"),
            ev("message", "c", ""),
            ev("message", "d", ""),
        ]
    );
}

#[test]
fn retry_only_with_digits() {
    let mut p = Parser::default();
    p.feed(b"retry: 1500\n\nretry: 12a\nretry:\nretry: -5\ndata: x\nretry: 20\n\n")
        .unwrap();
    let e = p.next_event().unwrap();
    assert_eq!(e.retry, Some(20));
    assert_eq!(p.retry(), Some(20));
    p.feed(b"retry: 99999999999999999999999\n\n").unwrap();
    assert_eq!(p.retry(), Some(u64::MAX));
}

#[test]
fn bom_is_skipped_once_per_stream() {
    let got = events(&[b"\xEF\xBB", b"\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n"]);
    // Only the stream's first BOM is skipped; a later one makes an unknown field name.
    assert_eq!(got, [ev("message", "a", "")]);
    let mut p = Parser::default();
    p.feed(b"data: a\n\n").unwrap();
    p.end_of_stream();
    p.feed(b"\xEF\xBB\xBFdata: b\n\n").unwrap();
    assert_eq!(p.next_event().unwrap().data, "a");
    assert_eq!(p.next_event().unwrap().data, "b");
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(
        events(&[b"data: \xff\xfe\n\n"]),
        [ev("message", "\u{fffd}\u{fffd}", "")]
    );
}

#[test]
fn an_unfinished_event_is_dropped_at_the_end() {
    let mut p = Parser::default();
    p.feed(b"id: 3\ndata: whole\n\ndata: half\nid: 4\ndata: cut")
        .unwrap();
    assert_eq!(p.next_event().unwrap().data, "whole");
    p.end_of_stream();
    assert!(p.next_event().is_none());
    // The id seen before the cut counts (as EventSource's last event ID).
    assert_eq!(p.last_event_id(), "4");
    p.feed(b"data: after\n\n").unwrap();
    assert_eq!(p.next_event().unwrap(), ev("message", "after", "4"));
}

#[test]
fn lines_and_events_are_bounded() {
    let mut p = Parser::new(16);
    let e = p.feed(&[b'x'; 17]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("longer than 16 bytes"), "{e}");
    let mut p = Parser::new(16);
    p.feed(b"data: 0123456789\n").unwrap();
    let e = p.feed(b"data: 0123456789\n").unwrap_err();
    assert!(e.to_string().contains("event's data"), "{e}");
    // A long line split over many chunks is caught too.
    let mut p = Parser::new(16);
    p.feed(b"data: 01234").unwrap();
    assert!(p.feed(b"56789abcdef").is_err());
}

#[test]
fn content_type_check() {
    let mut h = HeaderMap::new();
    assert!(!is_event_stream(&h));
    for (v, yes) in [
        ("text/event-stream", true),
        ("Text/Event-Stream; charset=utf-8", true),
        ("text/plain", false),
        ("text/event-streams", false),
    ] {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
        assert_eq!(is_event_stream(&h), yes, "{v}");
    }
}

/// The check as it was before it compared bytes (`to_str`, `split`, `trim`): the byte
/// comparison must answer the same for every value.
fn is_event_stream_by_str(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
}

#[test]
fn content_type_check_answers_as_the_str_check_did() {
    let mut values: Vec<Vec<u8>> = [
        "",
        ";",
        "text/event-stream",
        "text/event-stream;",
        " \ttext/event-stream \t; charset=utf-8",
        "TEXT/EVENT-STREAM",
        ";text/event-stream",
        "text/event-stream, text/plain",
        "text/event-stream x",
        "text/event-strea",
        "application/octet-stream",
    ]
    .iter()
    .map(|v| v.as_bytes().to_vec())
    .collect();
    // Every byte a header value may hold, before, inside, after the type and in a parameter:
    // obs-text (0x80-0xFF) makes `to_str` fail, so those answer false either way.
    for c in (0x20..=0xffu8).chain([b'\t']) {
        if c == 0x7f {
            continue;
        }
        for v in [
            vec![c],
            [&[c][..], b"text/event-stream"].concat(),
            [b"text/event-stream", &[c][..]].concat(),
            [b"text/event-stream; q=", &[c][..]].concat(),
            [b"text/event", &[c][..], b"stream"].concat(),
        ] {
            values.push(v);
        }
    }
    let mut h = HeaderMap::new();
    let mut yes = 0;
    for v in values {
        let Ok(value) = HeaderValue::from_bytes(&v) else {
            continue;
        };
        h.insert(header::CONTENT_TYPE, value);
        let want = is_event_stream_by_str(&h);
        yes += usize::from(want);
        assert_eq!(
            is_event_stream(&h),
            want,
            "{:?}",
            String::from_utf8_lossy(&v)
        );
    }
    assert!(yes >= 8, "the cases include matches ({yes})");
}
