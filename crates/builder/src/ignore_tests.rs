use super::*;

fn ig(text: &str) -> Ignore {
    Ignore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[track_caller]
fn check(text: &str, excluded: &[&str], kept: &[&str]) {
    let ignore = ig(text);
    for p in excluded {
        assert!(ignore.excluded(p), "{text:?} should exclude {p:?}");
    }
    for p in kept {
        assert!(!ignore.excluded(p), "{text:?} should keep {p:?}");
    }
}

#[test]
fn empty_file_excludes_nothing() {
    check("", &[], &["a", "a/b", ".git"]);
    check("# only a comment\n\n   \n", &[], &["a"]);
    assert!(!ig("").has_exceptions());
}

#[test]
fn plain_name_and_its_contents() {
    check(
        ".git",
        &[".git", ".git/HEAD", ".git/objects/ab/cd"],
        &["x/.git", ".gitignore"],
    );
    check(
        "node_modules\n",
        &["node_modules/a/b.js"],
        &["src/node_modules"],
    );
}

#[test]
fn star_stays_in_one_element() {
    check(
        "*.log",
        &["a.log", ".log", "a.log/inner"],
        &["dir/a.log", "a.txt"],
    );
    check("*/*.tmp", &["d/x.tmp"], &["x.tmp", "d/e/x.tmp"]);
}

#[test]
fn double_star() {
    check(
        "**/*.log",
        &["a.log", "d/a.log", "d/e/f.log"],
        &["a.txt", "d/log"],
    );
    check("**", &["a", "a/b", ".dockerignore"], &[]);
    check(
        "dir/**",
        &["dir/a", "dir/a/b"],
        &["dir", "dirx/a", "other/dir/a"],
    );
    check(
        "**/cache",
        &["cache", "a/cache", "a/b/cache/x"],
        &["acache"],
    );
    check(
        "a/**/b",
        &["a/b", "a/x/b", "a/x/y/b", "a/x/b/c"],
        &["a/xb", "b"],
    );
}

#[test]
fn question_mark_and_classes() {
    check("temp?", &["temp1", "tempx/y"], &["temp", "temp12", "temp/"]);
    check(
        "file[0-9].txt",
        &["file3.txt"],
        &["filex.txt", "file10.txt"],
    );
    check("file[^0-9].txt", &["filex.txt"], &["file3.txt"]);
    check("[ab]c", &["ac", "bc"], &["cc"]);
    check("a\\*b", &["a*b"], &["axb"]);
}

#[test]
fn exceptions_later_patterns_win() {
    let text = "*.log\n!keep.log\n";
    check(text, &["a.log", "b.log"], &["keep.log", "x.txt"]);
    assert!(ig(text).has_exceptions());
    // An exclusion after the exception wins again.
    check("*.log\n!keep.log\nkeep.log\n", &["keep.log"], &[]);
    check(
        "docs\n!docs/README.md\n",
        &["docs/a.md"],
        &["docs/README.md"],
    );
    check(
        "**\n!src\n",
        &["Dockerfile", "tests/x"],
        &["src", "src/main.rs"],
    );
}

#[test]
fn patterns_are_cleaned() {
    check("/build/\n", &["build", "build/out"], &["src/build"]);
    check("./tmp", &["tmp"], &[]);
    check("a//b/../c", &["a/c"], &["a/b"]);
    check("  spaced  ", &["spaced"], &[]);
    check("! keep\n*\n", &["keep"], &[]);
}

#[test]
fn comments_only_at_line_start() {
    check("#foo\n", &[], &["#foo"]);
    check(" #foo\n", &["#foo"], &[]);
}

#[test]
fn paths_are_normalised() {
    check("a/b", &["./a/b", "/a/b", "a//b/c"], &["a"]);
}

#[test]
fn bad_patterns_are_errors() {
    for bad in ["[", "a[b", "x[]", "a\\", "[z-a]", "!", "!  "] {
        let err = Ignore::parse(bad).expect_err(bad);
        assert!(!err.is_empty());
    }
    let err = Ignore::parse("ok\nfoo[bar\n").unwrap_err();
    assert!(err.contains("foo[bar"), "{err}");
}

#[test]
fn bom_is_skipped() {
    check("\u{feff}secret", &["secret"], &[]);
}

#[test]
fn exceptions_below_an_excluded_directory() {
    let ignore = ig("docs\n!docs/keep/*.md\n");
    assert!(ignore.excluded("docs/keep"));
    assert!(!ignore.excluded("docs/keep/a.md"));
    assert!(ignore.may_include_below("docs"));
    assert!(ignore.may_include_below("docs/keep"));
    assert!(!ignore.may_include_below("docs/other"));
    assert!(!ignore.may_include_below("src"));
    assert!(ig("*\n!**/*.rs\n").may_include_below("any/dir"));
    assert!(!ig("*\n").may_include_below("any"));
}
