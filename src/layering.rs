//! The arrows of ARCHITECTURE.md, checked: a test reads the sources and fails when a file
//! imports one above it, when files import each other in a circle, or when GraphQL or HTTP
//! types appear below the layers that translate.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// How high a top-level module sits; a file may import its own level and below.
    fn rank(module: &str) -> Option<u8> {
        Some(match module {
            "values" | "error" | "config" | "logging" | "layering" | "routes" => 0,
            "db" | "storage" => 1,
            "auth" | "app" => 2,
            "domain" => 3,
            "graphql" | "jobs" => 4,
            "http" => 5,
            "cli" => 6,
            _ => return None,
        })
    }

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The file a `crate::a::b…` path names: the deepest existing module file.
    fn resolve(root: &Path, segments: &[&str]) -> Option<PathBuf> {
        for len in (1..=segments.len()).rev() {
            let base = segments[..len].iter().collect::<PathBuf>();
            for candidate in [
                root.join(&base).with_extension("rs"),
                root.join(&base).join("mod.rs"),
            ] {
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
        None
    }

    /// Every `crate::…` path in the text, as its segments (`use crate::{a, b::c}` included).
    fn crate_paths(text: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("crate::") {
            if at > 0 && text.as_bytes()[at - 1] == b'$' {
                continue;
            }
            let rest = &text[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let path: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|s| {
                            s.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
                                .to_owned()
                        })
                        .filter(|s| !s.is_empty())
                        .collect();
                    if !path.is_empty() {
                        out.push(path);
                    }
                }
                continue;
            }
            let path: Vec<String> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if !path.is_empty() {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn layering_is_one_way() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut problems = Vec::new();
        let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
        for file in &files {
            let relative = file.strip_prefix(&root).unwrap();
            let own_module = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            let Some(own_rank) = rank(&own_module) else {
                continue;
            };
            let text = std::fs::read_to_string(file).unwrap();
            for path in crate_paths(&text) {
                let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                let Some(target_rank) = rank(segments[0]) else {
                    continue;
                };
                if target_rank > own_rank {
                    problems.push(format!(
                        "{} imports crate::{} (above it)",
                        relative.display(),
                        segments.join("::")
                    ));
                }
                if let Some(target) = resolve(&root, &segments)
                    && target != *file
                {
                    edges.entry(file.clone()).or_default().insert(target);
                }
            }
            let name = format!("src/{}", relative.display());
            // Everything below the GraphQL and HTTP layers, and the jobs beside them.
            let below_transport = matches!(
                own_module.as_str(),
                "db" | "storage" | "auth" | "app" | "domain" | "jobs"
            );
            if below_transport {
                let banned_words = [
                    "async_graphql",
                    "InputObject",
                    "SimpleObject",
                    "MaybeUndefined",
                    "#[graphql",
                    "axum::",
                    "http::",
                ];
                // The S3 client speaks its service's HTTP protocol outward, as OpenDAL does
                // inside; it translates no request of ours.
                let outward_client = name == "src/storage/s3.rs";
                for banned in banned_words {
                    if outward_client && banned == "http::" {
                        continue;
                    }
                    if text.contains(banned) {
                        problems.push(format!(
                            "{name} uses {banned}: translation belongs above domain"
                        ));
                    }
                }
            }
        }
        // Circles: a path from a file back to itself.
        for start in edges.keys() {
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((node, trail)) = stack.pop() {
                for next in edges.get(&node).into_iter().flatten() {
                    if next == start {
                        let names: Vec<String> = trail
                            .iter()
                            .chain([start])
                            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                            .collect();
                        problems.push(format!("import circle: {}", names.join(" → ")));
                    } else if seen.insert(next.clone()) {
                        let mut longer = trail.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
        problems.sort();
        problems.dedup();
        assert!(
            problems.is_empty(),
            "layering broken:\n{}",
            problems.join("\n")
        );
    }
}
