use super::*;

/// The defaults with the one key every deployment must set.
pub(super) fn usable() -> Settings {
    let mut s = Settings::defaults();
    s.auth.token_secret = "0123456789abcdef0123456789abcdef".into();
    s
}

#[test]
fn defaults_are_valid_once_the_secret_is_set() {
    usable().validate().unwrap();
}

#[test]
fn unsafe_token_secrets_are_refused() {
    for (secret, why) in [
        ("", "is not set"),
        ("   ", "is not set"),
        ("change-me-change-me-change-me-change-me", "placeholder"),
        ("CHANGE-ME please, a long enough string here", "placeholder"),
        ("0123456789abcdef0123456789abcde", "fewer than 32"),
    ] {
        let mut s = usable();
        s.auth.token_secret = secret.into();
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("auth.token_secret") && e.contains(why),
            "{secret:?}: {e}"
        );
    }
    // What config/default.toml holds is not usable as it is.
    let e = Settings::defaults().validate().unwrap_err().to_string();
    assert!(e.contains("auth.token_secret"), "{e}");
}

#[test]
fn invalid_values_name_their_key() {
    let mut s = usable();
    s.server.listen = "nope".into();
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("server.listen"));
    let mut s = usable();
    s.redis.url = "http://x".into();
    assert!(s.validate().unwrap_err().to_string().contains("redis.url"));
    for bad in [0, MAX_SUBSCRIBER_BUFFER + 1] {
        let mut s = usable();
        s.redis.subscriber_buffer = bad;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("redis.subscriber_buffer"));
    }
    for bad in [0, 99, 60_001] {
        let mut s = usable();
        s.redis.epoch_check_ms = bad;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("redis.epoch_check_ms"));
    }
    let mut s = usable();
    s.auth.token_secret = "short".into();
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("auth.token_secret"));
    let mut s = usable();
    s.chat.agent_unroutable_ms = s.chat.agent_grace_ms + 1;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("chat.agent_unroutable_ms"), "{e}");
    let mut s = usable();
    s.chat.presence_settle_ms = 0;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("chat.presence_settle_ms"), "{e}");
    let mut s = usable();
    s.files.url = "ftp://x/y".into();
    assert!(s.validate().unwrap_err().to_string().contains("files.url"));
    let mut s = usable();
    s.files.allowed_types = vec!["Image".into()];
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("files.allowed_types"), "{e}");
}

#[test]
fn keepalive_must_fit_the_grace_periods_and_the_idle_timeout() {
    let err = |f: &dyn Fn(&mut Settings)| {
        let mut s = usable();
        f(&mut s);
        s.validate().err().map(|e| e.to_string())
    };
    // The defaults sit inside the rule: 6 x 10 s <= 60 s, 2 x 10 s <= 30 s.
    assert_eq!(err(&|_| {}), None);
    let e = err(&|s| s.chat.visitor_grace_ms = 59_999).unwrap();
    assert!(
        e.contains("limits.ping_interval_ms") && e.contains("chat.visitor_grace_ms"),
        "{e}"
    );
    let e = err(&|s| s.chat.agent_grace_ms = 30_000).unwrap();
    assert!(
        e.contains("limits.ping_interval_ms") && e.contains("chat.agent_grace_ms"),
        "{e}"
    );
    let e = err(&|s| s.limits.idle_timeout_ms = 19_999).unwrap();
    assert!(
        e.contains("limits.idle_timeout_ms") && e.contains("limits.ping_interval_ms"),
        "{e}"
    );
    // A short grace works with a ping interval to match.
    assert_eq!(
        err(&|s| {
            s.chat.visitor_grace_ms = 600;
            s.limits.ping_interval_ms = 100;
        }),
        None
    );
}

#[test]
fn store_timeouts_are_bounded_and_named() {
    for key in [
        "store.statement_timeout_ms",
        "store.lock_timeout_ms",
        "store.connect_timeout_ms",
        "server.ready_timeout_ms",
    ] {
        let mut s = usable();
        match key {
            "store.statement_timeout_ms" => s.store.statement_timeout_ms = 0,
            "store.lock_timeout_ms" => s.store.lock_timeout_ms = 0,
            "store.connect_timeout_ms" => s.store.connect_timeout_ms = MAX_TIMEOUT_MS + 1,
            _ => s.server.ready_timeout_ms = 0,
        }
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
    }
    let mut s = usable();
    s.store.lock_timeout_ms = s.store.statement_timeout_ms + 1;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("store.lock_timeout_ms"), "{e}");
}

#[test]
fn abuse_limits_are_checked_naming_their_key() {
    for (tweak, key) in [
        (
            (|a: &mut Abuse| a.sockets_per_ip = 0) as fn(&mut Abuse),
            "abuse.sockets_per_ip",
        ),
        (
            |a| a.visitor_frames_per_second = 0,
            "abuse.visitor_frames_per_second",
        ),
        (
            |a| a.socket_count_ttl_seconds = 2,
            "abuse.socket_count_ttl_seconds",
        ),
        (
            |a| a.transcript_max_bytes = 10,
            "abuse.transcript_max_bytes",
        ),
        (|a| a.visitor_title_chars = 500, "abuse.visitor_title_chars"),
        (|a| a.visitors_page_size = 0, "abuse.visitors_page_size"),
        (|a| a.visitors_in_view = 5000, "abuse.visitors_in_view"),
        (
            |a| a.visitor_list_bytes_per_second = 10,
            "abuse.visitor_list_bytes_per_second",
        ),
    ] {
        let mut s = usable();
        tweak(&mut s.abuse);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn allowed_file_types_match_exactly_or_by_prefix() {
    let f = Settings::defaults().files;
    assert!(f.allows("image/png"));
    assert!(f.allows("application/pdf"));
    assert!(!f.allows("image/"));
    assert!(!f.allows("application/pdfx"));
    assert!(!f.allows("text/html"));
}

#[test]
fn zero_rates_and_durations_are_refused_naming_their_key() {
    type Spoil = fn(&mut Settings);
    let cases: [(&str, Spoil); 6] = [
        ("abuse.new_visitors_per_ip_per_minute", |s| {
            s.abuse.new_visitors_per_ip_per_minute = 0
        }),
        ("abuse.transcript_mails_per_ip_burst", |s| {
            s.abuse.transcript_mails_per_ip_burst = 0
        }),
        ("server.header_timeout_ms", |s| {
            s.server.header_timeout_ms = 0
        }),
        ("chat.monitor_max_chats", |s| s.chat.monitor_max_chats = 0),
        ("mail.claim_idle_ms", |s| s.mail.claim_idle_ms = 0),
        ("server.ready_timeout_ms", |s| s.server.ready_timeout_ms = 0),
    ];
    for (key, spoil) in cases {
        let mut s = usable();
        spoil(&mut s);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
}
