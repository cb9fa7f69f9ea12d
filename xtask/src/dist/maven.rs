//! The Maven artifact `dev.turnout:turnout` (the Kotlin/JVM package, `bindings/kotlin`): a Maven
//! repository tree in `target/dist/maven/`, as `mvn deploy` writes it to a `file://` repository.
//!
//! ```text
//! maven/dev/turnout/turnout/maven-metadata.xml (+ .md5, .sha1)
//! maven/dev/turnout/turnout/<v>/turnout-<v>.pom                 (+ .md5, .sha1 for each file)
//! maven/dev/turnout/turnout/<v>/turnout-<v>.jar                 classes + the native libraries
//! maven/dev/turnout/turnout/<v>/turnout-<v>-sources.jar         facade + generated bindings
//! maven/dev/turnout/turnout/<v>/turnout-<v>-javadoc.jar         Dokka, Javadoc format
//! ```
//!
//! The jar carries `libturnout_ffi.so` of every Linux target of [`native::TARGETS`] (and the
//! darwin `.dylib`s when zig could link them) at JNA's resource paths, `<prefix>/libturnout_ffi.so`
//! (`linux-x86-64`, `linux-aarch64`, `darwin-x86-64`, `darwin-aarch64`). The facade extracts the
//! one of its platform once and loads it for both JNA and the JNI fast path
//! (`bindings/kotlin/src/main/kotlin/dev/turnout/internal/NativeLoader.kt`): no system property.
//!
//! Build: the libraries of [`native::build`] are copied into
//! `bindings/kotlin/target/native-resources/<prefix>/` (a resource directory of the POM), then
//! `mvn -Pdist deploy` (tests skipped, no `install` into `~/.m2`) with the alternative deployment
//! repository `file://target/dist/maven`. The `dist` profile adds the sources jar and the javadoc
//! jar (Dokka's `javadocJar`). With `--reuse-builds` (after `cargo xtask kotlin` in `cargo xtask
//! test`) the generated bindings are not generated again.
//!
//! Consumer test: only `target/dist/maven/` is copied into a scratch directory; a Java project
//! there (a POM whose one extra repository is that `file://` tree, dependency
//! `dev.turnout:turnout:<v>`) is built with `mvn -q -B package` and run with `java -cp`: the
//! library version, the fast path (`jni`, from the jar, with no system property) and one
//! decision per reference context. Third-party dependencies (kotlin-stdlib, JNA, Maven plugins)
//! come from the normal local repository `~/.m2/repository`; `dev/turnout/turnout` is deleted
//! from it before (so the artifact is resolved from the file repository, checked with
//! `_remote.repositories`) and after the test.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::{consumer_command, copy_tree, fresh_dir, native, output, Dist, Reference, Scratch, VARIABLE};
use crate::{kotlin, rel, run as exec, step};

const GROUP_ID: &str = "dev.turnout";
const ARTIFACT_ID: &str = "turnout";
/// The repository id of `target/dist/maven` (deploy and consumer POM).
const REPO_ID: &str = "turnout-dist";

/// `<repo>/dev/turnout/turnout/<version>/turnout-<version><suffix>`.
fn artifact(repo: &Path, version: &str, suffix: &str) -> PathBuf {
    repo.join(GROUP_ID.replace('.', "/"))
        .join(ARTIFACT_ID)
        .join(version)
        .join(format!("{ARTIFACT_ID}-{version}{suffix}"))
}

/// Builds the maven artifact into target/dist and returns its manifest entry.
pub(crate) fn build(d: &Dist) -> Result<Value, String> {
    // Each library is copied into the POM's resources as soon as it is built (the target
    // directories are shared with the other platforms' builds).
    kotlin::clear_natives()?;
    let mut libs = Vec::new();
    let mut without = Vec::new();
    for t in &native::TARGETS {
        match native::build(t)?.cdylib {
            Some(lib) => {
                let copy = kotlin::add_native(t.jna, &lib)?;
                check_library(&copy, t)?;
                libs.push((t.jna, copy));
            }
            None if t.linux => return Err(format!("{}: no shared library was linked", t.triple)),
            None => without.push(t.jna),
        }
    }
    let dir = kotlin::project_dir();
    let generated = dir.join("target/generated-sources/uniffi");
    if d.reuse_builds && generated.join("dev/turnout/ffi/turnout_ffi.kt").is_file() {
        println!("    generated bindings of cargo xtask kotlin reused ({})", rel(&generated));
    } else {
        crate::uniffi::generate("kotlin", &generated)?;
    }
    kotlin::ensure_maven()?;

    let repo = d.path("maven");
    fresh_dir(&repo)?;
    step(&format!(
        "mvn -Pdist deploy -> {} (jar with {}; sources, javadoc (Dokka); tests skipped)",
        rel(&repo),
        libs.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
    ));
    let t = Instant::now();
    exec(
        kotlin::mvn(&dir)
            .args(["-Pdist", "-Dmaven.test.skip=true", "-Dmaven.install.skip=true"])
            .arg(format!("-DaltDeploymentRepository={REPO_ID}::file://{}", repo.display()))
            .arg("deploy"),
    )?;
    println!("    mvn deploy: {:.0} s", t.elapsed().as_secs_f64());
    if !without.is_empty() {
        println!("    no library for {} (zig could not link the dylib): not in the jar", without.join(", "));
    }

    let jar = artifact(&repo, &d.version, ".jar");
    let entries = output(std::process::Command::new("jar").arg("tf").arg(&jar))?;
    let mut want: Vec<String> = libs
        .iter()
        .map(|(prefix, lib)| format!("{prefix}/{}", lib.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    want.push("dev/turnout/Turnout.class".into());
    want.push("dev/turnout/ffi/Client.class".into());
    for w in &want {
        if !entries.lines().any(|l| l == w) {
            return Err(format!("{} has no {w}", rel(&jar)));
        }
    }
    let mut files = Vec::new();
    for suffix in [".pom", ".jar", "-sources.jar", "-javadoc.jar"] {
        let f = artifact(&repo, &d.version, suffix);
        for sum in ["", ".sha1", ".md5"] {
            let p = PathBuf::from(format!("{}{sum}", f.display()));
            if !p.is_file() {
                return Err(format!("mvn deploy wrote no {}", rel(&p)));
            }
        }
        files.push(d.file_entry(&f)?);
    }
    let metadata = repo.join(GROUP_ID.replace('.', "/")).join(ARTIFACT_ID).join("maven-metadata.xml");
    if !metadata.is_file() {
        return Err(format!("mvn deploy wrote no {}", rel(&metadata)));
    }
    let size = std::fs::metadata(&jar).map(|m| m.len()).unwrap_or(0);
    println!("    {}: {:.1} MB", rel(&jar), size as f64 / 1e6);
    Ok(json!({
        "groupId": GROUP_ID,
        "artifactId": ARTIFACT_ID,
        "version": d.version,
        "repository": "maven",
        "files": files,
        "natives": libs.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
    }))
}

/// The library is an ELF shared object (Linux) or a Mach-O (darwin) of the target's machine.
fn check_library(lib: &Path, t: &native::Target) -> Result<(), String> {
    let bytes = std::fs::read(lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let aarch64 = t.triple.starts_with("aarch64");
    let ok = if t.linux {
        // e_machine (little-endian, offset 18): 62 x86-64, 183 AArch64.
        bytes.starts_with(b"\x7fELF") && bytes.get(18).copied() == Some(if aarch64 { 183 } else { 62 })
    } else {
        // MH_MAGIC_64, then cputype: 0x01000007 x86-64, 0x0100000c arm64.
        bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
            && bytes.get(4..8) == Some(if aarch64 { &[0x0c, 0, 0, 1][..] } else { &[0x07, 0, 0, 1][..] })
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} is not a shared library for {}", lib.display(), t.triple))
    }
}

/// Installs the maven artifact into a fresh project outside the repository and checks its decisions.
pub(crate) fn consume(d: &Dist, entry: &Value, r: &Reference) -> Result<(), String> {
    let version = entry["version"].as_str().ok_or("maven entry: no version")?;
    let group = entry["groupId"].as_str().ok_or("maven entry: no groupId")?;
    let artifact_id = entry["artifactId"].as_str().ok_or("maven entry: no artifactId")?;
    let source = d.path(entry["repository"].as_str().ok_or("maven entry: no repository")?);
    let scratch = Scratch::new("maven")?;
    let repo = scratch.0.join("maven");
    copy_tree(&source, &repo)?;
    let app = scratch.0.join("app");
    let src = app.join("src/main/java");
    std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    r.write_inputs(&app)?;
    let pom = CONSUMER_POM
        .replace("@REPO_ID@", REPO_ID)
        .replace("@REPO_URL@", &format!("file://{}", repo.display()))
        .replace("@GROUP@", group)
        .replace("@ARTIFACT@", artifact_id)
        .replace("@VERSION@", version);
    std::fs::write(app.join("pom.xml"), pom).map_err(|e| e.to_string())?;
    std::fs::write(src.join("Main.java"), CONSUMER_MAIN.replace("@VARIABLE@", VARIABLE)).map_err(|e| e.to_string())?;

    // The one copy of dev.turnout:turnout Maven may use is the file repository's.
    let cached = local_repository().join(group.replace('.', "/")).join(artifact_id);
    forget(&cached)?;
    let result = (|| {
        let t = Instant::now();
        exec(consumer_command("mvn", &app).args(["-q", "-B", "-Dstyle.color=never", "package"]))?;
        let resolve = t.elapsed().as_secs_f64();
        let origin = std::fs::read_to_string(cached.join(version).join("_remote.repositories")).unwrap_or_default();
        if !origin.contains(&format!(">{REPO_ID}=")) {
            return Err(format!("{group}:{artifact_id}:{version} was not resolved from {REPO_ID}:\n{origin}"));
        }
        let classpath = std::fs::read_to_string(app.join("target/classpath.txt")).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let stdout = output(
            consumer_command("java", &app)
                .env_remove("LD_LIBRARY_PATH")
                .arg("-cp")
                .arg(format!("target/classes:{}", classpath.trim()))
                .arg("Main")
                .arg(version),
        )?;
        println!(
            "    mvn package (resolve + compile): {resolve:.1} s; java (extract, load, {} decisions): {:.1} s",
            r.contexts.len(),
            t.elapsed().as_secs_f64()
        );
        r.check("maven", &stdout)
    })();
    forget(&cached)?;
    // The group's directories too, when nothing else is in them (`remove_dir` keeps non-empty ones).
    for parent in cached.ancestors().skip(1).take(group.split('.').count()) {
        let _ = std::fs::remove_dir(parent);
    }
    result
}

/// `~/.m2/repository` (where `mvn` keeps what it downloads, unless settings say otherwise).
fn local_repository() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".m2/repository")
}

fn forget(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The consumer's POM: the file repository, the dependency, and the plugin versions the
/// package's own build uses (already in the local repository). `target/classpath.txt` for `java -cp`.
const CONSUMER_POM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>turnout-consumer</artifactId>
  <version>1</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <repositories>
    <repository>
      <id>@REPO_ID@</id>
      <url>@REPO_URL@</url>
      <snapshots><enabled>false</enabled></snapshots>
    </repository>
  </repositories>
  <dependencies>
    <dependency>
      <groupId>@GROUP@</groupId>
      <artifactId>@ARTIFACT@</artifactId>
      <version>@VERSION@</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-resources-plugin</artifactId>
        <version>3.3.1</version>
      </plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-compiler-plugin</artifactId>
        <version>3.13.0</version>
        <configuration><release>17</release></configuration>
      </plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-surefire-plugin</artifactId>
        <version>3.5.4</version>
      </plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-jar-plugin</artifactId>
        <version>3.4.2</version>
      </plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
        <executions>
          <execution>
            <phase>package</phase>
            <goals><goal>build-classpath</goal></goals>
            <configuration>
              <includeScope>runtime</includeScope>
              <outputFile>${project.build.directory}/classpath.txt</outputFile>
            </configuration>
          </execution>
        </executions>
      </plugin>
    </plugins>
  </build>
</project>
"#;

/// The consumer: `java Main <version>` prints one decision per line of `contexts.jsonl`
/// (flat JSON objects of integer facets, parsed with a regular expression).
const CONSUMER_MAIN: &str = r#"import dev.turnout.ClientOptions;
import dev.turnout.Client;
import dev.turnout.Facets;
import dev.turnout.Turnout;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Main {
    public static void main(String[] args) throws Exception {
        String expected = args[0];
        if (!Turnout.getLibraryVersion().equals(expected) || !ClientOptions.SDK_VERSION.equals(expected)) {
            System.err.println("version: library " + Turnout.getLibraryVersion() + ", SDK " + ClientOptions.SDK_VERSION + ", expected " + expected);
            System.exit(2);
        }
        if (!Turnout.getFastPath().equals("jni")) {
            System.err.println("the JNI fast path did not load from the jar: " + Turnout.getFastPath());
            System.exit(3);
        }
        Pattern facet = Pattern.compile("\"([^\"]+)\"\\s*:\\s*(-?\\d+)");
        StringBuilder out = new StringBuilder();
        try (Client client = Turnout.client(Files.readAllBytes(Paths.get("config.json")))) {
            for (String line : Files.readAllLines(Paths.get("contexts.jsonl"))) {
                if (line.isBlank()) continue;
                Facets facets = new Facets();
                Matcher m = facet.matcher(line);
                while (m.find()) facets.set(m.group(1), Long.parseLong(m.group(2)));
                out.append(client.getVariable("@VARIABLE@", facets).int64(0L)).append('\n');
            }
        }
        System.out.print(out);
    }
}
"#;
