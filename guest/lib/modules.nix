# The module system: a small re-implementation of nixpkgs' lib/modules.nix.
#
# A module is a path, a function of { config, options, lib, pkgs, ... } or an
# attribute set, in the full form { imports; options; config; } or the
# shorthand form (everything but `imports' is config). evalModules collects
# all modules through their imports, merges the option declarations into one
# tree and evaluates every option from the definitions of all modules:
# properties (mkIf, mkMerge, mkOverride, mkOrder) are discharged, the
# definitions with the best priority (lowest number) are kept and merged by
# the option's type. Errors use NixOS's wording, so messages read the same as
# on a NixOS host.
lib:
let
  inherit (builtins)
    all any attrNames concatLists concatMap concatStringsSep elemAt filter
    foldl' functionArgs genericClosure head isAttrs isBool isFunction isList
    isPath isString length mapAttrs removeAttrs sort split tail toString
    tryEval typeOf zipAttrsWith;
  inherit (lib) filterAttrs imap1 mapAttrsToList take types;

  # ---- properties ---------------------------------------------------------

  defaultOverridePriority = 100;
  defaultOrderPriority = 1000;

  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOrder = priority: content: { _type = "order"; inherit priority content; };

  typeOfProperty = v: if isAttrs v then v._type or "" else "";

  # pushDown turns the properties around an attribute set of definitions into
  # properties around each attribute, without evaluating any condition, so a
  # `config = mkIf config.foo.enable { ... }` can refer to config. Returns a list
  # of attribute sets.
  pushDown = v:
    let t = typeOfProperty v; in
    if t == "merge" then concatMap pushDown v.contents
    else if t == "if" then map (mapAttrs (_: mkIf v.condition)) (pushDown v.content)
    else if t == "override" then map (mapAttrs (_: mkOverride v.priority)) (pushDown v.content)
    else [ v ];

  # discharge resolves the properties around one option definition into a
  # list of { prio; order; value; }: mkMerge splices, mkIf keeps or drops,
  # mkOverride and mkOrder annotate. The innermost priority wins.
  discharge = prio: order: v:
    let t = typeOfProperty v; in
    if t == "merge" then concatMap (discharge prio order) v.contents
    else if t == "if" then
      if !isBool v.condition then throw "`mkIf' called with a non-Boolean condition"
      else if v.condition then discharge prio order v.content
      else [ ]
    else if t == "override" then discharge v.priority order v.content
    else if t == "order" then discharge prio v.priority v.content
    else [ { inherit prio order; value = v; } ];

  # ---- showing options and definitions -------------------------------------

  showOption = parts:
    let
      escapeOptionPart = part:
        let escaped = lib.escapeNixString part; in
        if escaped == "\"${part}\"" then part else escaped;
    in
    concatStringsSep "." (map escapeOptionPart parts);

  showFiles = files: concatStringsSep " and " (map (f: "`${toString f}'") files);

  isIdentifier = s: builtins.match "[a-zA-Z_][a-zA-Z0-9_'-]*" s != null;

  # toPretty renders a value as Nix text, like nixpkgs' lib.generators.toPretty.
  toPretty = indent: depth: v:
    let
      t = typeOf v;
      deeper = indent + "  ";
      intro = "\n" + deeper;
      outro = "\n" + indent;
    in
    if depth > 10 then "<...>"
    else if t == "string" then lib.escapeNixString v
    else if t == "int" || t == "float" then toString v
    else if t == "bool" then lib.boolToString v
    else if t == "null" then "null"
    else if t == "path" then toString v
    else if t == "lambda" then "<function>"
    else if t == "list" then
      if v == [ ] then "[ ]"
      else "[" + intro + concatStringsSep intro (map (toPretty deeper (depth + 1)) v) + outro + "]"
    else if lib.isDerivation v then "<derivation ${v.name or "?"}>"
    else if v == { } then "{ }"
    else
      "{" + intro
      + concatStringsSep intro (mapAttrsToList
        (name: value: "${if isIdentifier name then name else lib.escapeNixString name} = ${toPretty deeper (depth + 1) value};")
        v)
      + outro + "}";

  # showDefs lists definitions as NixOS does: "\n- In `FILE': VALUE".
  showDefs = defs: concatStringsSep "" (map
    (def:
      let
        pretty = tryEval (let s = toPretty "" 0 def.value; in builtins.seq s s);
        lines = filter isString (split "\n" pretty.value);
        value = concatStringsSep "\n    " (take 5 lines ++ lib.optional (length lines > 5) "...");
        result =
          if !pretty.success then ""
          else if length lines > 1 then ":\n    " + value
          else ": " + value;
      in
      "\n- In `${toString def.file}'${result}")
    defs);

  # ---- merging definitions -------------------------------------------------

  # mergeDefinitions evaluates one option at `loc` of `type` from its
  # definitions ({ file; value; } with properties still inside).
  mergeDefinitions = loc: type: defs:
    let
      discharged = concatMap
        (def: map (d: d // { inherit (def) file; })
          (builtins.addErrorContext "while evaluating definitions from `${toString def.file}':"
            (discharge defaultOverridePriority defaultOrderPriority def.value)))
        defs;
      highestPrio = foldl' (p: d: if d.prio < p then d.prio else p) 9999 discharged;
      best = filter (d: d.prio == highestPrio) discharged;
      ordered =
        if any (d: d.order != defaultOrderPriority) best
        then sort (a: b: a.order < b.order) best
        else best;
      values = map (d: { inherit (d) file value; }) ordered;
      isDefined = values != [ ];
      invalid = filter (d: !(type.check d.value)) values;
      mergedValue =
        if !isDefined then throw "The option `${showOption loc}' is used but not defined."
        else if invalid != [ ] then
          throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${showDefs invalid}"
        else type.merge loc values;
    in
    {
      inherit isDefined mergedValue highestPrio;
      definitions = map (d: d.value) values;
      files = lib.unique (map (d: d.file) values);
      optionalValue = if isDefined then { value = mergedValue; } else { };
    };

  mergeEqualOption = loc: defs:
    if length defs == 1 then (head defs).value
    else
      (foldl'
        (first: def:
          if def.value != first.value then
            throw "The option `${showOption loc}' has conflicting definition values:${showDefs [ first def ]}\nUse `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions."
          else first)
        (head defs)
        (tail defs)).value;

  mergeOneOption = loc: defs:
    if length defs == 1 then (head defs).value
    else throw "The unique option `${showOption loc}' is defined multiple times. Definition values:${showDefs defs}";

  mergeDefaultOption = loc: defs:
    let values = map (d: d.value) defs; in
    if length defs == 1 then (head defs).value
    else if all isList values then concatLists values
    else if all isAttrs values then foldl' (a: b: a // b) { } values
    else if all isBool values then any (x: x) values
    else if all isString values then concatStringsSep "" values
    else mergeEqualOption loc defs;

  # ---- declarations --------------------------------------------------------

  mkOption = attrs: attrs // {
    _type = "option";
    type = attrs.type or types.unspecified;
  };

  mkEnableOption = name: mkOption {
    type = types.bool;
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
  };

  isOption = v: isAttrs v && v._type or "" == "option";

  # mergeDeclarations merges the `options' of all modules ({ file; options; })
  # into one tree whose leaves are options that know where they were declared.
  mergeDeclarations = loc: decls:
    let
      byName = zipAttrsWith (_: ds: ds)
        (map (d: mapAttrs (_: options: { inherit (d) file; inherit options; }) d.options) decls);
    in
    mapAttrs
      (name: ds:
        let
          here = loc ++ [ name ];
          leaves = filter (d: isOption d.options) ds;
        in
        if leaves == [ ] then mergeDeclarations here ds
        else if length leaves == 1 && length ds == 1 then
          (head leaves).options // { declarations = [ (head leaves).file ]; loc = here; }
        else if length leaves == 1 then
          throw "The option `${showOption here}' in `${toString (head leaves).file}' is a prefix of options in ${showFiles (map (d: d.file) (filter (d: !isOption d.options) ds))}."
        else
          throw "The option `${showOption here}' in `${toString (elemAt leaves 1).file}' is already declared in `${toString (head leaves).file}'.")
      byName;

  # ---- evaluation ----------------------------------------------------------

  # evalOptionTree evaluates the declared options at `loc` from the
  # definitions ({ file; value; }) of all modules for that attribute set.
  # A definition of an undeclared option fails like NixOS, naming the first
  # attribute that is not declared.
  evalOptionTree = loc: decls: defs:
    let
      pushed = concatMap
        (def: map
          (value:
            if isAttrs value then { inherit (def) file; inherit value; }
            else throw "A definition for option `${showOption loc}' is not of type `attribute set of options'. Definition values:${showDefs [ { inherit (def) file; inherit value; } ]}")
          (pushDown def.value))
        defs;
      byName = zipAttrsWith (_: ds: ds)
        (map (def: mapAttrs (_: value: { inherit (def) file; inherit value; }) def.value) pushed);
      undeclared = filter (name: !(decls ? ${name})) (attrNames byName);
      firstUndeclared = head undeclared;
    in
    if undeclared != [ ] then
      throw "The option `${showOption (loc ++ [ firstUndeclared ])}' does not exist. Definition values:${showDefs [ (head byName.${firstUndeclared}) ]}"
    else
      mapAttrs
        (name: decl:
          if isOption decl then evalOption decl (byName.${name} or [ ])
          else evalOptionTree (loc ++ [ name ]) decl (byName.${name} or [ ]))
        decls;

  # evalOption turns a declared option and its definitions into the option
  # as modules see it in `options': with value, isDefined, definitions, files.
  evalOption = opt: defs:
    let
      defaultDef = lib.optional (opt ? default) {
        file = head opt.declarations;
        value = mkOverride 1500 opt.default;
      };
      merged = mergeDefinitions opt.loc opt.type (defaultDef ++ defs);
      value = if opt ? apply then opt.apply merged.mergedValue else merged.mergedValue;
    in
    opt // {
      inherit value;
      inherit (merged) isDefined definitions files highestPrio;
    };

  optionValues = tree: mapAttrs (_: v: if isOption v then v.value else optionValues v) tree;

  # ---- collecting modules ----------------------------------------------------

  # callModule applies a module function to the arguments it names. Known
  # arguments come from `args'; any other from config._module.args, looked up
  # only when used, so a module may take arguments that other modules define.
  # An argument with a default that is not in `args' is left to its default.
  callModule = args: config: key: f:
    let
      wanted = filterAttrs (name: hasDefault: !hasDefault || args ? ${name}) (functionArgs f);
      lookup = name:
        if args ? ${name} then args.${name}
        else config._module.args.${name} or (throw "The module `${key}' needs the argument `${name}', which is not available.");
    in
    f (mapAttrs (name: _: lookup name) wanted);

  # normalize turns a module's value into { file; key; imports; options; config; }.
  normalize = file: key: m:
    if !isAttrs m then
      throw "The module `${key}' is a ${typeOf m}, not a module (an attribute set or a function returning one)."
    else if m ? options || m ? config then
      let extra = removeAttrs m [ "_file" "key" "imports" "options" "config" "meta" "disabledModules" ]; in
      if extra != { } then
        throw "Module `${key}' has an unsupported attribute `${head (attrNames extra)}'. This is caused by introducing a top-level `config' or `options' attribute. Add configuration attributes immediately on the top level instead, or move all of them (namely: ${toString (attrNames extra)}) into the explicit `config' attribute."
      else {
        file = m._file or file;
        key = toString (m.key or key);
        imports = m.imports or [ ];
        options = m.options or { };
        config = m.config or { };
      }
    else {
      file = m._file or file;
      key = toString (m.key or key);
      imports = m.imports or [ ];
      options = { };
      config = removeAttrs m [ "_file" "key" "imports" "meta" "disabledModules" ];
    };

  # collectModules returns every module reachable through imports, once each
  # (a file imported twice counts once), as normalized modules.
  collectModules = args: config: roots:
    let
      load = parentFile: anonKey: m:
        if isPath m || (isString m && lib.hasPrefix "/" m) then
          let file = toString m; in
          normalize file file (apply file (import m))
        else normalize parentFile anonKey (apply anonKey m);
      apply = key: m: if isFunction m then callModule args config key m else m;
      importsOf = parent: imap1
        (n: load parent.file "${parent.key}:anon-${toString n}")
        parent.imports;
    in
    genericClosure {
      startSet = imap1 (n: load "<unknown-file>" "<root>:anon-${toString n}") roots;
      operator = importsOf;
    };

  # The module every evaluation starts with: `_module.args' lets modules hand
  # arguments to each other, like NixOS's `_module.args.pkgs'.
  internalModule = {
    _file = toString ./modules.nix;
    options._module.args = mkOption {
      type = types.lazyAttrsOf types.raw;
      default = { };
      description = "Additional arguments passed to each module.";
    };
  };

  # evalModules { modules; prefix ? []; specialArgs ? {} } evaluates a list of
  # modules into { config; options; }. specialArgs are passed to every module
  # (NixOS passes modulesPath and, here, pkgs this way).
  evalModules = { modules, prefix ? [ ], specialArgs ? { } }:
    let
      args = specialArgs // { inherit lib config options; };
      collected = collectModules args config ([ internalModule ] ++ modules);
      declarations = mergeDeclarations prefix (map (m: { inherit (m) file options; }) collected);
      options = evalOptionTree prefix declarations (map (m: { inherit (m) file; value = m.config; }) collected);
      config = optionValues options;
    in
    { inherit config options; };
in
{
  inherit
    mkIf mkMerge mkOverride mkOrder defaultOverridePriority defaultOrderPriority
    mkOption mkEnableOption isOption showOption showFiles showDefs
    mergeDefinitions mergeEqualOption mergeOneOption mergeDefaultOption
    evalModules;
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkImageMediaOverride = mkOverride 60;
  mkForce = mkOverride 50;
  mkVMOverride = mkOverride 10;
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  mkOptionType = attrs: {
    _type = "option-type";
    check = _: true;
    merge = mergeDefaultOption;
    description = attrs.name;
  } // attrs;
}
