//! The text of `show` and `show connections`, and the paging of the connection list.
//!
//! `show connections [limit N] [after LCORE:SESSION]` lists the connections of at most `N`
//! sessions (default and most: [`MAX_SESSIONS_PER_PAGE`]) in (lcore, session id) order,
//! starting after the cursor. The line after the summary says what the page holds and
//! whether it was cut: `shown_sessions=2 limit=2 more=yes next=0:17`; the next page is
//! `show connections limit 2 after 0:17`, until `more=no`. Session ids only grow on an
//! lcore, so a page walk sees every session that lives through it once; sessions opened
//! behind the cursor during the walk are not seen (as with any cursor).
//!
//! Each lcore selects its page itself ([`dataplane::app::proxy::admin::ConnPage`]); the pages are
//! joined here in lcore order and cut at `N` sessions.

use std::fmt::Write as _;

use dataplane::app::proxy::admin::{ConnPage, HealthState, LcoreView, MAX_SESSIONS_PER_PAGE};

/// A `show connections` request: which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRequest {
    /// Sessions at most.
    pub limit: usize,
    /// Start after this (lcore, session).
    pub after: Option<(u32, u64)>,
}

/// What a page of `show connections` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Sessions listed.
    pub shown: usize,
    /// The page's size.
    pub limit: usize,
    /// Sessions after the last listed exist.
    pub more: bool,
    /// The last session listed: the next page's cursor.
    pub last: Option<(u32, u64)>,
}

impl ConnRequest {
    /// Parses the words after `show connections`: `limit N`, `after LCORE:SESSION` (also
    /// spelled `--limit`, `--after`), in any order.
    pub fn parse(words: &[&str]) -> Result<ConnRequest, String> {
        let usage = "show connections [limit N] [after LCORE:SESSION]";
        let mut req = ConnRequest { limit: MAX_SESSIONS_PER_PAGE, after: None };
        let mut it = words.iter();
        while let Some(w) = it.next() {
            let key = w.trim_start_matches("--");
            let Some(v) = it.next() else {
                return Err(format!("{w:?} needs a value ({usage})"));
            };
            match key {
                "limit" => {
                    req.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_SESSIONS_PER_PAGE).contains(n))
                        .ok_or_else(|| format!("limit {v:?}: not a number of sessions (1..={MAX_SESSIONS_PER_PAGE})"))?;
                }
                "after" => {
                    let cursor = v
                        .split_once(':')
                        .and_then(|(l, s)| Some((l.parse::<u32>().ok()?, s.parse::<u64>().ok()?)))
                        .ok_or_else(|| format!("after {v:?}: not LCORE:SESSION (the `next` of the previous page)"))?;
                    req.after = Some(cursor);
                }
                _ => return Err(format!("unknown word {w:?} ({usage})")),
            }
        }
        Ok(req)
    }

    /// What `lcore` lists: nothing before the cursor's lcore, sessions after the cursor's
    /// session on it, from the first after it.
    pub fn lcore_page(&self, lcore: u32) -> Option<ConnPage> {
        match self.after {
            Some((l, _)) if lcore < l => None,
            Some((l, s)) if lcore == l => Some(ConnPage { after: Some(s), limit: self.limit }),
            _ => Some(ConnPage { after: None, limit: self.limit }),
        }
    }

    /// Joins the lcores' pages in lcore order (sorting `views`), keeps the connections of
    /// the first `limit` sessions and says whether any were left out.
    pub fn cut(&self, views: &mut [LcoreView]) -> PageInfo {
        views.sort_by_key(|v| v.lcore);
        let mut page = PageInfo { shown: 0, limit: self.limit, more: false, last: None };
        for v in views.iter_mut() {
            let room = self.limit - page.shown;
            let mut sessions = 0;
            let mut keep = 0;
            let mut prev = None;
            for c in &v.connections {
                if prev != Some(c.session) {
                    if sessions == room {
                        break;
                    }
                    sessions += 1;
                    prev = Some(c.session);
                    page.last = Some((v.lcore, c.session));
                }
                keep += 1;
            }
            page.more |= keep < v.connections.len() || v.more;
            v.connections.truncate(keep);
            page.shown += sessions;
        }
        page
    }
}

/// The text of `show` (every lcore summed: sessions per listener and server) and, with a
/// page, of `show connections`. A server's `health` is the verdict of its checks, one for
/// the process (every lcore reads the same, so the first view's is taken); `ejected`
/// counts the lcores whose passive ejection holds it out; `check_lcore` is the lcore that
/// runs its checks (`-`: no checks).
pub fn render(views: &[LcoreView], page: Option<&PageInfo>) -> String {
    let mut out = String::new();
    let draining = views.iter().any(|v| v.draining);
    let sessions: u64 = views.iter().map(|v| v.sessions).sum();
    let _ = writeln!(out, "lcores={} sessions={sessions} draining={}", views.len(), yes(draining));
    if let Some(p) = page {
        // Before the sections, so that `ctl --json` makes these top-level fields.
        let _ = write!(out, "shown_sessions={} limit={} more={}", p.shown, p.limit, yes(p.more));
        if let (true, Some((l, s))) = (p.more, p.last) {
            let _ = write!(out, " next={l}:{s}");
        }
        out.push('\n');
    }
    out.push_str("listeners:\n");
    if let Some(first) = views.first() {
        for (i, l) in first.listeners.iter().enumerate() {
            let sum = |f: fn(&dataplane::app::proxy::admin::ListenerView) -> u64| {
                views.iter().filter_map(|v| v.listeners.get(i)).map(f).sum::<u64>()
            };
            let _ = writeln!(
                out,
                "  listener={} listen={} pool={} state={} active={} total={}",
                l.name,
                l.listen,
                l.pool,
                if l.open { "open" } else { "closed" },
                sum(|l| l.active),
                sum(|l| l.total)
            );
        }
        out.push_str("servers:\n");
        for (i, s) in first.servers.iter().enumerate() {
            let all: Vec<&dataplane::app::proxy::admin::ServerView> = views.iter().filter_map(|v| v.servers.get(i)).collect();
            let sum = |f: fn(&dataplane::app::proxy::admin::ServerView) -> u64| all.iter().map(|s| f(s)).sum::<u64>();
            let ejected = all.iter().filter(|s| s.ejected).count();
            let checker = views
                .iter()
                .find(|v| v.servers.get(i).is_some_and(|s| s.checking))
                .map_or_else(|| "-".to_string(), |v| v.lcore.to_string());
            let health = if s.health == HealthState::Up { "up" } else { "down" };
            let _ = writeln!(
                out,
                "  pool={} server={} weight={} admin={} health={} ejected={ejected} check_lcore={checker} configured={} active={} attempts={} failed={}",
                s.pool,
                s.addr,
                s.weight,
                s.admin.name(),
                health,
                yes(s.configured),
                sum(|s| s.active),
                sum(|s| s.attempts),
                sum(|s| s.failed)
            );
        }
    }
    if page.is_some() {
        out.push_str("connections:\n");
        for v in views {
            for c in &v.connections {
                let srtt = c.srtt.map(|d| (d.as_nanos() / 1000).to_string()).unwrap_or_else(|| "-".to_string());
                let _ = writeln!(
                    out,
                    "  lcore={} session={} listener={} side={} local={} remote={} state={} cwnd={} srtt_us={srtt} bytes_received={} bytes_acked={}",
                    v.lcore, c.session, c.listener, c.side, c.local, c.remote, c.state, c.cwnd, c.bytes_received, c.bytes_acked
                );
            }
        }
    }
    out
}

/// `yes` or `no`.
pub(super) fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use dataplane::app::proxy::admin::{ConnView, LcoreView};

    use super::*;

    fn conn(session: u64, side: &'static str) -> ConnView {
        ConnView {
            session,
            listener: "web".into(),
            side,
            local: "198.18.0.2:80".parse().unwrap_or_else(|e| panic!("{e}")),
            remote: "198.18.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}")),
            state: "ESTABLISHED".into(),
            cwnd: 14600,
            srtt: None,
            bytes_received: 0,
            bytes_acked: 0,
        }
    }

    /// An lcore's page: both sides of each session.
    fn lcore(lcore: u32, sessions: &[u64], more: bool) -> LcoreView {
        let connections = sessions.iter().flat_map(|&s| [conn(s, "client"), conn(s, "backend")]).collect();
        LcoreView { lcore, sessions: 100, connections, more, ..LcoreView::default() }
    }

    #[test]
    fn requests_parse_and_bad_words_are_named() {
        assert_eq!(ConnRequest::parse(&[]), Ok(ConnRequest { limit: MAX_SESSIONS_PER_PAGE, after: None }));
        assert_eq!(
            ConnRequest::parse(&["limit", "5", "after", "1:42"]),
            Ok(ConnRequest { limit: 5, after: Some((1, 42)) })
        );
        assert_eq!(ConnRequest::parse(&["--after", "0:7", "--limit", "3"]), Ok(ConnRequest { limit: 3, after: Some((0, 7)) }));
        let err = |w: &[&str]| ConnRequest::parse(w).err().unwrap_or_default();
        assert!(err(&["limit", "0"]).contains("limit \"0\": not a number of sessions (1..=1000)"));
        assert!(err(&["limit", "1001"]).contains("1..=1000"));
        assert!(err(&["limit"]).contains("\"limit\" needs a value"));
        assert!(err(&["after", "7"]).contains("after \"7\": not LCORE:SESSION"));
        assert!(err(&["after", "x:1"]).contains("not LCORE:SESSION"));
        assert!(err(&["offset", "3"]).contains("unknown word \"offset\""));
    }

    #[test]
    fn each_lcore_lists_from_the_cursor() {
        let req = ConnRequest { limit: 4, after: Some((1, 9)) };
        assert_eq!(req.lcore_page(0), None, "before the cursor's lcore: nothing");
        assert_eq!(req.lcore_page(1), Some(ConnPage { after: Some(9), limit: 4 }));
        assert_eq!(req.lcore_page(2), Some(ConnPage { after: None, limit: 4 }));
        let first = ConnRequest { limit: 4, after: None };
        assert_eq!(first.lcore_page(0), Some(ConnPage { after: None, limit: 4 }));
    }

    /// Two lcores' pages joined in lcore order and cut at the limit: the page says it was
    /// cut and where to go on; the last page says it is the last.
    #[test]
    fn pages_are_joined_in_lcore_order_and_cut() {
        let req = ConnRequest { limit: 3, after: None };
        let mut views = vec![lcore(1, &[5, 6], false), lcore(0, &[2, 3], false)];
        let page = req.cut(&mut views);
        assert_eq!(page, PageInfo { shown: 3, limit: 3, more: true, last: Some((1, 5)) });
        assert_eq!(views[0].lcore, 0);
        assert_eq!(views[0].connections.len(), 4);
        assert_eq!(views[1].connections.iter().map(|c| c.session).collect::<Vec<_>>(), vec![5, 5]);
        let text = render(&views, Some(&page));
        assert!(text.contains("\nshown_sessions=3 limit=3 more=yes next=1:5\n"), "{text}");
        assert_eq!(text.matches("side=backend").count(), 3, "{text}");
        // `ctl --json`: the page's fields at the top, the connections a list.
        let json = crate::admin::ctl::to_json(&text);
        assert_eq!((json["shown_sessions"].as_i64(), json["more"].as_bool()), (Some(3), Some(true)), "{json}");
        assert_eq!(json["next"], "1:5");
        assert_eq!(json["connections"].as_array().map(Vec::len), Some(6));
        assert_eq!(json["connections"][5]["lcore"], 1);

        // The next page: lcore 1 after session 5.
        let req = ConnRequest { limit: 3, after: Some((1, 5)) };
        let mut views = vec![lcore(0, &[], false), lcore(1, &[6], false)];
        let page = req.cut(&mut views);
        assert_eq!(page, PageInfo { shown: 1, limit: 3, more: false, last: Some((1, 6)) });
        let text = render(&views, Some(&page));
        assert!(text.contains("\nshown_sessions=1 limit=3 more=no\n"), "no cursor on the last page: {text}");
        assert_eq!(crate::admin::ctl::to_json(&text)["more"], false);
    }

    /// An lcore that had more than the page says so even when nothing was cut here.
    #[test]
    fn an_lcore_cut_its_own_page() {
        let req = ConnRequest { limit: 2, after: None };
        let mut views = vec![lcore(0, &[1, 2], true)];
        assert_eq!(req.cut(&mut views), PageInfo { shown: 2, limit: 2, more: true, last: Some((0, 2)) });
        // Exactly full, with nothing after it on any lcore: not cut.
        let mut views = vec![lcore(0, &[1], false), lcore(1, &[4], false)];
        assert_eq!(req.cut(&mut views), PageInfo { shown: 2, limit: 2, more: false, last: Some((1, 4)) });
        // A later lcore's sessions that did not fit: cut there.
        let mut views = vec![lcore(0, &[1, 2], false), lcore(1, &[4], false)];
        let page = req.cut(&mut views);
        assert_eq!(page, PageInfo { shown: 2, limit: 2, more: true, last: Some((0, 2)) });
        assert!(views[1].connections.is_empty());
    }

    proptest::proptest! {
        /// Any words after `show connections` are a request or an error naming a word,
        /// never a panic; a request's page is cut within its limit.
        #[test]
        fn any_words_parse_or_fail(
            words in proptest::collection::vec(
                proptest::sample::select(vec!["limit", "--limit", "after", "--after", "0", "1000", "1001", "3:9", "4294967296:1", ":", "x", ""]),
                0..6,
            ),
            sessions in proptest::collection::vec(0u64..50, 0..40),
        ) {
            match ConnRequest::parse(&words) {
                Ok(req) => {
                    let mut ids = sessions.clone();
                    ids.sort_unstable();
                    ids.dedup();
                    let mut views = vec![lcore(0, &ids, false), lcore(1, &ids, true)];
                    let page = req.cut(&mut views);
                    proptest::prop_assert!(page.shown <= req.limit && (1..=MAX_SESSIONS_PER_PAGE).contains(&req.limit));
                    proptest::prop_assert!(page.more, "lcore 1 had more");
                }
                Err(e) => proptest::prop_assert!(!e.is_empty()),
            }
        }
    }

    #[test]
    fn show_without_a_page_lists_no_connections() {
        let text = render(&[lcore(0, &[1], false)], None);
        assert!(!text.contains("connections:") && !text.contains("more="), "{text}");
    }
}
