//! Every relative link in `README.md` and `docs/*.md` reaches a file, and a heading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use regex::Regex;

use super::{pages, prose, read, root};

// ---- Links ----

/// GitHub's heading anchors: lower case, punctuation dropped, spaces as `-`, repeats numbered.
fn anchors(page: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose(page) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let slug: String = title
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn relative_links_reach_a_file_and_a_heading() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let code = Regex::new(r"`[^`]*`").unwrap();
    let mut problems = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = Path::new(&page).parent().unwrap().to_path_buf();
        for line in prose(&text) {
            let line = code.replace_all(line, "");
            for target in link.captures_iter(&line).map(|c| c[1].to_string()) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let rel = if file.is_empty() {
                    PathBuf::from(&page)
                } else {
                    normalize(&dir.join(file))
                };
                let rel_str = rel.to_string_lossy().into_owned();
                if !root().join(&rel).exists() {
                    problems.push(format!("{page}: `{target}`: no file {rel_str}"));
                    continue;
                }
                if let Some(anchor) = anchor {
                    if !rel_str.ends_with(".md") || !anchors(&read(&rel_str)).contains(anchor) {
                        problems.push(format!("{page}: `{target}`: no heading #{anchor}"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    let page = "# A `b`: c/d\n```\n# not a heading\n```\n## Same\n## Same\n";
    let got: Vec<String> = anchors(page).into_iter().collect();
    assert_eq!(got, vec!["a-b-cd", "same", "same-1"]);
}

// ---- Gateway-file examples ----
