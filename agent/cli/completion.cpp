#include "agent/cli/completion.hpp"

#include <sstream>

namespace lca::cli {
namespace {

// Words the tree cannot know. key: "<command path>|<option>" for an option's values,
// "<command path>|#<n>" for the n-th argument ("#*" for any after the listed ones).
struct Hint {
  const char* key;
  const char* words;
};

const char* const kResources =
    "ibu imagebasedupgrade imagebasedupgrades imagebasedupgrades.lca.openshift.io "
    "imagebasedupgrade.lca.openshift.io ibu/upgrade imagebasedupgrade.lca.openshift.io/upgrade";

const std::vector<Hint>& Hints() {
  static const std::vector<Hint> kHints = {
      {"get|-o", "json yaml wide name jsonpath="},
      {"get|--output", "json yaml wide name jsonpath="},
      {"status|-o", "json yaml"},
      {"status|--output", "json yaml"},
      {"version|-o", "json yaml"},
      {"version|--output", "json yaml"},
      {"patch|--type", "merge"},
      {"wait|--for",
       "condition=Idle condition=PrepCompleted condition=UpgradeCompleted "
       "condition=RollbackCompleted"},
      {"wait|--progress", "auto bar lines none"},
      {"status|--progress", "auto bar lines"},
      {"mirrors render|-o", "-"},
      {"completion|#0", "bash zsh"},
      {"get|#0", kResources},
      {"get|#1", "upgrade"},
      {"patch|#0", kResources},
      {"patch|#1", "upgrade"},
      {"wait|#0", kResources},
      {"wait|#1", "upgrade"},
      {"annotate|#0", kResources},
      {"annotate|#1", "upgrade"},
      {"annotate|#*",
       "lca.openshift.io/manual-cleanup-done= lca.openshift.io/trigger-reconcile= "
       "auto-rollback-on-failure.lca.openshift.io/post-reboot-config=Disabled "
       "auto-rollback-on-failure.lca.openshift.io/upgrade-completion=Disabled "
       "auto-rollback-on-failure.lca.openshift.io/init-monitor=Disabled "
       "image-cleanup.lca.openshift.io/on-prep=Disabled"},
  };
  return kHints;
}

void Walk(const CLI::App& app, const std::string& path, std::vector<CompletionCommand>& out) {
  CompletionCommand cmd;
  cmd.path = path;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional() && opt->get_lnames().empty() && opt->get_snames().empty()) continue;
    std::vector<std::string> names;
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& n : names) {
      cmd.options.push_back(n);
      if (opt->get_items_expected_min() > 0) cmd.value_options.push_back(n);
    }
  }
  const auto subs = app.get_subcommands([](const CLI::App*) { return true; });
  for (const CLI::App* sub : subs) cmd.subcommands.push_back(sub->get_name());
  out.push_back(cmd);
  for (const CLI::App* sub : subs) {
    Walk(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
  }
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// A shell `case` over the command path ("$1"), echoing one word list per command.
void CaseFunction(std::ostream& o, const char* name, const std::vector<CompletionCommand>& cmds,
                  std::vector<std::string> CompletionCommand::*field) {
  o << name << "() {\n  case \"$1\" in\n";
  for (const auto& c : cmds) {
    if (!(c.*field).empty())
      o << "    \"" << c.path << "\") echo \"" << Join(c.*field) << "\" ;;\n";
  }
  o << "  esac\n}\n";
}

// Functions both shells run (POSIX case/echo and [[ ]], which bash and zsh share).
std::string DataFunctions(const CLI::App& app) {
  const auto cmds = CompletionCommands(app);
  std::ostringstream o;
  CaseFunction(o, "__lcactl_subcommands", cmds, &CompletionCommand::subcommands);
  CaseFunction(o, "__lcactl_options", cmds, &CompletionCommand::options);
  CaseFunction(o, "__lcactl_value_options", cmds, &CompletionCommand::value_options);
  o << "__lcactl_takes_value() { [[ \" $(__lcactl_value_options \"$1\") \" == *\" $2 \"* ]]; }\n";
  o << "# Values of option $2 of command $1 (status 1: complete file names), arguments (#n).\n";
  o << "__lcactl_hint() {\n  case \"$1|$2\" in\n";
  for (const auto& h : Hints()) o << "    \"" << h.key << "\") echo \"" << h.words << "\" ;;\n";
  o << "    *) return 1 ;;\n  esac\n}\n";
  o << "__lcactl_args() { __lcactl_hint \"$1\" \"#$2\" || __lcactl_hint \"$1\" \"#*\"; }\n";
  // Which command the words before the cursor (all but the last argument) name, and how many
  // arguments it already has.
  o << R"SH(__lcactl_scan() {
  cmdpath="" nargs=0
  local w skip=0
  while (($# > 1)); do
    w="$1"
    shift
    if ((skip)); then
      skip=0
    elif [[ "$w" == -* ]]; then
      [[ "$w" != *=* ]] && __lcactl_takes_value "$cmdpath" "$w" && skip=1
    elif ((nargs == 0)) && [[ " $(__lcactl_subcommands "$cmdpath") " == *" $w "* ]]; then
      cmdpath="${cmdpath:+$cmdpath }$w"
    else
      nargs=$((nargs + 1))
    fi
  done
}
)SH";
  return o.str();
}

}  // namespace

std::vector<CompletionCommand> CompletionCommands(const CLI::App& app) {
  std::vector<CompletionCommand> out;
  Walk(app, "", out);
  return out;
}

std::string BashCompletion(const CLI::App& app) {
  std::string s = "# bash completion for lcactl (generated by `lcactl completion bash`)\n";
  s += DataFunctions(app);
  s += R"SH(_lcactl() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmdpath nargs vals
  __lcactl_scan "${COMP_WORDS[@]:1:COMP_CWORD}"
  if [[ "$prev" == -* ]] && __lcactl_takes_value "$cmdpath" "$prev"; then
    if vals="$(__lcactl_hint "$cmdpath" "$prev")"; then
      COMPREPLY=($(compgen -W "$vals" -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(__lcactl_options "$cmdpath")" -- "$cur"))
  elif ((nargs == 0)); then
    COMPREPLY=($(compgen -W "$(__lcactl_subcommands "$cmdpath") $(__lcactl_args "$cmdpath" 0)" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(__lcactl_args "$cmdpath" "$nargs")" -- "$cur"))
  fi
}
complete -F _lcactl lcactl
)SH";
  return s;
}

std::string ZshCompletion(const CLI::App& app) {
  std::string s =
      "#compdef lcactl\n# zsh completion for lcactl (generated by `lcactl completion zsh`)\n";
  s += DataFunctions(app);
  s += R"SH(_lcactl() {
  local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}" cmdpath nargs vals
  local -a cands
  __lcactl_scan "${(@)words[2,CURRENT]}"
  if [[ "$prev" == -* ]] && __lcactl_takes_value "$cmdpath" "$prev"; then
    if vals="$(__lcactl_hint "$cmdpath" "$prev")"; then
      cands=(${=vals})
      compadd -- "${cands[@]}"
    else
      _files
    fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    cands=(${=$(__lcactl_options "$cmdpath")})
  elif ((nargs == 0)); then
    cands=(${=$(__lcactl_subcommands "$cmdpath")} ${=$(__lcactl_args "$cmdpath" 0)})
  else
    cands=(${=$(__lcactl_args "$cmdpath" "$nargs")})
  fi
  compadd -- "${cands[@]}"
}
if [[ "${funcstack[1]}" == "_lcactl" ]]; then
  _lcactl "$@"
else
  compdef _lcactl lcactl
fi
)SH";
  return s;
}

}  // namespace lca::cli
