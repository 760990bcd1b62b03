package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// usersConfig parses a config.json holding users (as modules.nix writes
// them: root and nobody are always there).
func usersConfig(t *testing.T, users string) *Config {
	t.Helper()
	all := `{
		"root": {"uid": 0, "description": "System administrator", "home": "/root", "group": "root"},
		"nobody": {"uid": 65534, "isSystemUser": true, "description": "Unprivileged account (don't use!)", "home": "/var/empty", "group": "nogroup"}`
	if users != "" {
		all += ", " + users
	}
	data, err := json.Marshal(map[string]any{"users": map[string]any{"users": json.RawMessage(all + "}")}})
	must(t, err)
	cfg, err := parseConfig(data)
	must(t, err)
	return cfg
}

func fakeHash(password string) (string, error) { return "HASH(" + password + ")", nil }

func TestMakeAccounts(t *testing.T) {
	t.Parallel()
	cfg := usersConfig(t, `
		"alice": {"isNormalUser": true, "group": "users", "home": "/home/alice", "createHome": true, "extraGroups": ["wheel", "audio"], "description": "Alice"},
		"bob": {"isNormalUser": true, "group": "users", "home": "/home/bob", "uid": 1500, "hashedPassword": "$6$s$h"},
		"carol": {"isNormalUser": true, "group": "users", "home": "/home/carol", "initialPassword": "pw", "extraGroups": ["wheel", "media"]},
		"svc": {"isSystemUser": true, "group": "svc", "home": "/var/lib/svc", "name": "service"}`)
	acc, err := makeAccounts(cfg, parseOldAccounts(nil, nil, nil), fakeHash)
	must(t, err)

	wantPasswd := `root:x:0:0:System administrator:/root:/run/current-system/sw/bin/sh
service:x:999:998::/var/lib/svc:/run/current-system/sw/bin/nologin
alice:x:1000:100:Alice:/home/alice:/run/current-system/sw/bin/sh
carol:x:1001:100::/home/carol:/run/current-system/sw/bin/sh
bob:x:1500:100::/home/bob:/run/current-system/sw/bin/sh
nobody:x:65534:65534:Unprivileged account (don't use!):/var/empty:/run/current-system/sw/bin/nologin
`
	if acc.passwd != wantPasswd {
		t.Errorf("passwd =\n%s\nwant\n%s", acc.passwd, wantPasswd)
	}
	wantShadow := `root:!:1::::::
service:!:1::::::
alice:!:1::::::
carol:HASH(pw):1::::::
bob:$6$s$h:1::::::
nobody:!:1::::::
`
	if acc.shadow != wantShadow {
		t.Errorf("shadow =\n%s\nwant\n%s", acc.shadow, wantShadow)
	}
	for _, want := range []string{"root:x:0:\n", "wheel:x:1:alice,carol\n", "audio:x:17:alice\n", "users:x:100:\n",
		"media:x:999:carol\n", "svc:x:998:\n", "nogroup:x:65534:\n", "shadow:x:318:\n"} {
		if !strings.Contains(acc.group, want) {
			t.Errorf("group lacks %q:\n%s", want, acc.group)
		}
	}
	if !strings.HasPrefix(acc.group, "root:x:0:\nwheel:x:1:") || !strings.HasSuffix(acc.group, "nogroup:x:65534:\n") {
		t.Errorf("group is not sorted by gid:\n%s", acc.group)
	}
}

// What the files said before wins over a fresh choice: uids and gids stay,
// a password set since (a shadow line that exists) stays.
func TestMakeAccountsKeepsState(t *testing.T) {
	t.Parallel()
	cfg := usersConfig(t, `
		"alice": {"isNormalUser": true, "group": "users", "home": "/home/alice", "hashedPassword": "$6$new$declared"},
		"erin": {"isNormalUser": true, "group": "users", "home": "/home/erin", "extraGroups": ["media"]},
		"frank": {"isNormalUser": true, "group": "users", "home": "/home/frank", "uid": 1001},
		"gina": {"isNormalUser": true, "group": "users", "home": "/home/gina"}`)
	old := parseOldAccounts(
		[]byte("root:x:0:0::/root:/bin/sh\nalice:x:1002:100::/home/alice:/bin/sh\ngina:x:1001:100::/home/gina:/bin/sh\ngone:x:1003:100::/home/gone:/bin/sh\n"),
		[]byte("root:x:0:\nmedia:x:990:erin\n"),
		[]byte("root:$6$abc$rootpw:19000:0:99999:7:::\nalice:$6$set$bypasswd:19001:0:99999:7:::\ngone:!:1::::::\n"),
	)
	acc, err := makeAccounts(cfg, old, fakeHash)
	must(t, err)
	for _, want := range []string{
		"alice:x:1002:", // kept
		"frank:x:1001:", // declared
		"erin:x:1000:",  // first free
		"gina:x:1003:",  // its old uid is frank's now
		"root:x:0:0:System administrator:/root:/run/current-system/sw/bin/sh\n",
	} {
		if !strings.Contains(acc.passwd, want) {
			t.Errorf("passwd lacks %q:\n%s", want, acc.passwd)
		}
	}
	if strings.Contains(acc.passwd, "gone") || strings.Contains(acc.shadow, "gone") {
		t.Errorf("an undeclared user stays:\n%s%s", acc.passwd, acc.shadow)
	}
	for _, want := range []string{
		"root:$6$abc$rootpw:19000:0:99999:7:::\n",
		"alice:$6$set$bypasswd:19001:0:99999:7:::\n", // mutable: the declared hash only counts for a new user
		"erin:!:1::::::\n",
	} {
		if !strings.Contains(acc.shadow, want) {
			t.Errorf("shadow lacks %q:\n%s", want, acc.shadow)
		}
	}
	if !strings.Contains(acc.group, "media:x:990:erin\n") {
		t.Errorf("media did not keep gid 990:\n%s", acc.group)
	}
}

func TestParseConfigRejectsAccounts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, users, want string }{
		{"colon in description", `"a": {"description": "x:y"}`, "users.users.a.description"},
		{"newline in home", `"a": {"home": "/home/a\nb"}`, "users.users.a.home"},
		{"colon in hashed password", `"a": {"hashedPassword": "x:y"}`, "users.users.a.hashedPassword"},
		{"comma in group", `"a": {"extraGroups": ["wheel", "a,b"]}`, "users.users.a.extraGroups[1]"},
		{"space in name", `"a": {"name": "a b"}`, "not a usable user name"},
		{"same account twice", `"a": {"name": "root"}`, "both the account root"},
		{"same uid twice", `"a": {"uid": 0}`, "the same uid 0"},
		{"uid out of range", `"a": {"uid": -1}`, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := `{"root": {"uid": 0, "home": "/root", "group": "root"}, ` + tc.users + `}`
			_, err := parseConfig([]byte(`{"users": {"users": ` + all + `}}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseConfig(%s) = %v, want an error containing %q", tc.users, err, tc.want)
			}
		})
	}
}
