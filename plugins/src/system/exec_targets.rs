//! What an `exec` step changes, read off its argv: a Helm release, a Kubernetes namespace, a
//! Terraform directory.
//!
//! Only a `cmd` argv is read, and only when its program (by file name) is `helm`, `kubectl`,
//! `terraform` or `tofu`:
//! - `helm upgrade|install|uninstall|rollback REL … [--kube-context X] [--namespace N | -n N]`
//!   (also `helm uninstall A B`, and `delete`/`un`/`del`/`uninstall` spellings);
//! - `kubectl [--context X] [--namespace N | -n N] VERB …` for a verb that changes something
//!   (`apply`, `delete`, `scale`, `patch`, `create`, `replace`, `label`, `annotate`, `set`,
//!   `autoscale`, `expose`, `run`, `edit`, and `rollout restart|undo|pause|resume`); the
//!   namespace is the flag's (`*` for `-A`/`--all-namespaces`; the named one for
//!   `delete|create namespace N`): a manifest's own `metadata.namespace` is not read;
//! - `terraform [-chdir=D] apply|destroy|import|taint|untaint|state …`: the directory is the
//!   step's `dir` (relative to where phoenix runs, as the process sees it) joined with `-chdir`,
//!   and the workspace is `TF_WORKSPACE` from the step's `env` (empty: the one selected).
//!
//! A `script` says nothing (its text is not parsed: what it runs depends on the shell), nor
//! does any other program, nor a command behind a wrapper (`env`, `sudo`, `sh -c`). A drill
//! that must be sure of such a step keeps it out of the drill or writes it as an argv.

use std::path::Path;

use serde_json::Value;

use crate::Target;

/// Flags of helm and kubectl that take a value in the next argument (when not written
/// `--flag=value`): a value is not a positional argument.
const VALUE_FLAGS: &[&str] = &[
    // Both.
    "-n",
    "--namespace",
    "--kubeconfig",
    "-o",
    "--output",
    "--timeout",
    "--kube-context",
    "--context",
    "--cluster",
    "--user",
    "-s",
    "--server",
    "--token",
    "--as",
    "--as-group",
    "-l",
    "--selector",
    "-f",
    "--filename",
    "-k",
    "--kustomize",
    // helm.
    "--values",
    "--set",
    "--set-string",
    "--set-file",
    "--set-json",
    "--set-literal",
    "--version",
    "--repo",
    "--username",
    "--password",
    "--ca-file",
    "--cert-file",
    "--key-file",
    "--keyring",
    "--description",
    "--post-renderer",
    "--post-renderer-args",
    "--history-max",
    "--max-history",
    "--kube-apiserver",
    "--kube-as-user",
    "--kube-as-group",
    "--kube-token",
    "--kube-ca-file",
    "--kube-tls-server-name",
    "--registry-config",
    "--repository-cache",
    "--repository-config",
    "--burst-limit",
    "--qps",
    "--name-template",
    "--labels",
    "--cascade",
    "--devel-version",
    // kubectl.
    "--field-manager",
    "--replicas",
    "--type",
    "-p",
    "--patch",
    "--patch-file",
    "--image",
    "--port",
    "--for",
    "-c",
    "--container",
    "--prune-allowlist",
    "--current-replicas",
    "--resource-version",
    "--grace-period",
    "--min",
    "--max",
    "--cpu-percent",
    "--to-revision",
    "--request-timeout",
    "--certificate-authority",
    "--client-certificate",
    "--client-key",
    "--tls-server-name",
    "--cache-dir",
    "--profile",
    "--profile-output",
    "-v",
    "--v",
];

/// An argv split into flags' values and positional arguments.
struct Args<'a> {
    positionals: Vec<&'a str>,
    flags: Vec<(&'a str, &'a str)>,
}

fn split(argv: &[String]) -> Args<'_> {
    let (mut positionals, mut flags) = (vec![], vec![]);
    let mut it = argv.iter().map(String::as_str);
    while let Some(a) = it.next() {
        if a == "--" {
            positionals.extend(it.by_ref());
            break;
        }
        if let Some((flag, value)) = a.split_once('=').filter(|(f, _)| f.starts_with('-')) {
            flags.push((flag, value));
        } else if let Some(value) = a.strip_prefix("-n").filter(|v| !v.is_empty() && !a.starts_with("--")) {
            flags.push(("-n", value));
        } else if a.starts_with('-') && a.len() > 1 {
            if VALUE_FLAGS.contains(&a) {
                flags.push((a, it.next().unwrap_or_default()));
            } else {
                flags.push((a, ""));
            }
        } else {
            positionals.push(a);
        }
    }
    Args { positionals, flags }
}

impl Args<'_> {
    /// The last value of any of these flags (the last one wins, as in cobra).
    fn value(&self, names: &[&str]) -> &str {
        self.flags.iter().rev().find(|(f, _)| names.contains(f)).map_or("", |(_, v)| v)
    }
}

/// What `exec`'s rendered `with` changes, as far as its argv tells.
pub(super) fn of(with: &Value) -> Vec<Target> {
    let Some(argv) = with.get("cmd").and_then(Value::as_array) else { return vec![] };
    let argv: Vec<String> = argv.iter().map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string)).collect();
    let Some((program, rest)) = argv.split_first() else { return vec![] };
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match name {
        "helm" => helm(rest),
        "kubectl" => kubectl(rest),
        "terraform" | "tofu" => {
            let workspace = with.pointer("/env/TF_WORKSPACE").and_then(Value::as_str).unwrap_or_default();
            terraform(rest, with.get("dir").and_then(Value::as_str), workspace)
        }
        _ => vec![],
    }
}

fn helm(rest: &[String]) -> Vec<Target> {
    let args = split(rest);
    let Some((verb, operands)) = args.positionals.split_first() else { return vec![] };
    let releases: Vec<&str> = match *verb {
        "upgrade" | "install" | "rollback" => operands.first().copied().into_iter().collect(),
        "uninstall" | "delete" | "del" | "un" => operands.to_vec(),
        _ => return vec![],
    };
    let (context, namespace) = (args.value(&["--kube-context"]), args.value(&["-n", "--namespace"]));
    releases.into_iter().map(|r| Target::helm_release(context, namespace, r)).collect()
}

fn kubectl(rest: &[String]) -> Vec<Target> {
    let args = split(rest);
    let changes = match args.positionals.as_slice() {
        ["rollout", sub, ..] => matches!(*sub, "restart" | "undo" | "pause" | "resume"),
        [verb, ..] => matches!(
            *verb,
            "apply"
                | "delete"
                | "scale"
                | "patch"
                | "create"
                | "replace"
                | "label"
                | "annotate"
                | "set"
                | "autoscale"
                | "expose"
                | "run"
                | "edit"
        ),
        [] => false,
    };
    if !changes {
        return vec![];
    }
    let context = args.value(&["--context"]);
    // `kubectl delete namespace drill` (or `ns/drill`) changes that namespace itself.
    let named: Vec<&str> = match args.positionals.as_slice() {
        ["delete" | "create", "namespace" | "namespaces" | "ns", names @ ..] => names.to_vec(),
        ["delete" | "create", names @ ..] => {
            names.iter().filter_map(|n| n.strip_prefix("namespace/").or_else(|| n.strip_prefix("ns/"))).collect()
        }
        _ => vec![],
    };
    if !named.is_empty() {
        return named.into_iter().map(|ns| Target::kube_namespace(context, ns)).collect();
    }
    let every = args.flags.iter().any(|(f, _)| matches!(*f, "-A" | "--all-namespaces"));
    let namespace = if every { "*" } else { args.value(&["-n", "--namespace"]) };
    vec![Target::kube_namespace(context, namespace)]
}

fn terraform(rest: &[String], dir: Option<&str>, workspace: &str) -> Vec<Target> {
    let args = split(rest);
    let changes = matches!(args.positionals.first(), Some(&("apply" | "destroy" | "import" | "taint" | "untaint" | "state")));
    if !changes {
        return vec![];
    }
    let base = Path::new(dir.unwrap_or("."));
    let chdir = args.value(&["-chdir", "--chdir"]);
    let root = if chdir.is_empty() { base.to_path_buf() } else { base.join(chdir) };
    vec![Target::terraform_dir(&root.display().to_string(), workspace)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn targets(cmd: &[&str]) -> Vec<String> {
        of(&json!({ "cmd": cmd })).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn helm_releases_with_context_and_namespace_in_every_spelling() {
        let t = targets(&["helm", "upgrade", "--install", "-f", "values.yaml", "web", "./chart", "--kube-context", "east", "-n", "prod"]);
        assert_eq!(t, ["Helm release web in namespace prod (kube context east)"]);
        let t = targets(&["/usr/local/bin/helm", "--kube-context=west", "--namespace=drill", "rollback", "api", "3"]);
        assert_eq!(t, ["Helm release api in namespace drill (kube context west)"]);
        let t = targets(&["helm", "uninstall", "a", "b", "-ndr", "--wait"]);
        assert_eq!(t, ["Helm release a in namespace dr (kube context current)", "Helm release b in namespace dr (kube context current)"]);
        let t = targets(&["helm", "install", "--namespace", "prod", "--set", "image.tag=v2", "web", "chart"]);
        assert_eq!(t, ["Helm release web in namespace prod (kube context current)"]);
        assert!(targets(&["helm", "list", "-n", "prod"]).is_empty());
        assert!(targets(&["helm", "status", "web"]).is_empty());
    }

    #[test]
    fn kubectl_verbs_that_change_something() {
        let t = targets(&["kubectl", "--context=east", "--namespace=prod", "apply", "-f", "deploy.yaml"]);
        assert_eq!(t, ["Kubernetes namespace prod (kube context east)"]);
        let t = targets(&["kubectl", "-n", "drill", "scale", "deploy/web", "--replicas", "3", "--context", "west"]);
        assert_eq!(t, ["Kubernetes namespace drill (kube context west)"]);
        assert_eq!(
            targets(&["kubectl", "rollout", "restart", "deploy/web"]),
            ["Kubernetes namespace of the context (kube context current)"]
        );
        assert!(targets(&["kubectl", "rollout", "status", "deploy/web", "-n", "prod"]).is_empty());
        assert!(targets(&["kubectl", "get", "pods", "-n", "prod"]).is_empty());
        assert!(targets(&["kubectl", "-n", "apply", "get", "pods"]).is_empty(), "`apply` is the namespace's name here");
        let t = targets(&["kubectl", "--context", "west", "delete", "namespace", "drill", "drill2"]);
        assert_eq!(t, ["Kubernetes namespace drill (kube context west)", "Kubernetes namespace drill2 (kube context west)"]);
        assert_eq!(targets(&["kubectl", "delete", "ns/drill", "-n", "other"]), ["Kubernetes namespace drill (kube context current)"]);
        assert_eq!(targets(&["kubectl", "delete", "pods", "--all", "-A"]), ["Kubernetes namespace * (kube context current)"]);
    }

    #[test]
    fn terraform_directories_as_the_step_resolves_them() {
        let here = std::env::current_dir().unwrap();
        let t = of(&json!({ "cmd": ["terraform", "apply", "-auto-approve"], "dir": "infra/azure" }));
        assert_eq!(t, vec![Target::terraform_dir(&here.join("infra/azure").display().to_string(), "")]);
        let t = of(&json!({ "cmd": ["tofu", "-chdir=../aws", "destroy"], "dir": "/srv/tf/azure" }));
        assert_eq!(t, vec![Target::terraform_dir("/srv/tf/aws", "")]);
        let t = of(&json!({ "cmd": ["terraform", "-chdir=/abs/x", "apply"], "dir": "/srv", "env": { "TF_WORKSPACE": "drill" } }));
        assert_eq!(t[0].to_string(), "Terraform in /abs/x (workspace drill)");
        assert!(of(&json!({ "cmd": ["terraform", "plan"] })).is_empty());
    }

    #[test]
    fn scripts_and_other_programs_say_nothing() {
        assert!(of(&json!({ "script": "helm uninstall web -n prod" })).is_empty());
        assert!(targets(&["sudo", "helm", "uninstall", "web"]).is_empty());
        assert!(targets(&["echo", "terraform", "destroy"]).is_empty());
        assert!(of(&json!({ "cmd": [] })).is_empty());
    }
}
