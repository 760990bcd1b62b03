# Option types, after nixpkgs' lib/types.nix: a type has a `description'
# (used in "is not of type" errors, worded as NixOS words them), a `check' on
# each definition and a `merge' of all definitions of the best priority.
lib:
let
  inherit (builtins)
    all concatLists concatStringsSep elem filter head isAttrs isBool isFloat
    isFunction isInt isList isPath isString length mapAttrs match substring
    toJSON toString zipAttrsWith;
  inherit (lib)
    imap1 last mergeDefinitions mergeDefaultOption mergeEqualOption
    mergeOneOption mkOptionType showFiles showOption toList;

  ints = rec {
    between = lowest: highest: mkOptionType {
      name = "intBetween";
      description = "integer between ${toString lowest} and ${toString highest} (both inclusive)";
      check = x: isInt x && x >= lowest && x <= highest;
      merge = mergeEqualOption;
    };
    unsignedBits = bits:
      let highest = (pow2 bits) - 1; in
      between 0 highest // {
        name = "unsignedInt${toString bits}";
        description = "${toString bits} bit unsigned integer; between 0 and ${toString highest} (both inclusive)";
      };
    signedBits = bits:
      let half = pow2 (bits - 1); in
      between (0 - half) (half - 1) // {
        name = "signedInt${toString bits}";
        description = "${toString bits} bit signed integer; between ${toString (0 - half)} and ${toString (half - 1)} (both inclusive)";
      };
    pow2 = n: if n == 0 then 1 else 2 * pow2 (n - 1);
    u8 = unsignedBits 8;
    u16 = unsignedBits 16;
    u32 = unsignedBits 32;
    s8 = signedBits 8;
    s16 = signedBits 16;
    s32 = signedBits 32;
    unsigned = mkOptionType {
      name = "unsignedInt";
      description = "unsigned integer, meaning >=0";
      check = x: isInt x && x >= 0;
      merge = mergeEqualOption;
    };
    positive = mkOptionType {
      name = "positiveInt";
      description = "positive integer, meaning >0";
      check = x: isInt x && x > 0;
      merge = mergeEqualOption;
    };
  };

  showValue = v: if isString v then toJSON v else toString v;
in
rec {
  inherit ints;

  raw = mkOptionType {
    name = "raw";
    description = "raw value";
    merge = mergeOneOption;
  };

  unspecified = mkOptionType {
    name = "unspecified";
    description = "unspecified value";
  };

  anything = mkOptionType {
    name = "anything";
    description = "anything";
  };

  bool = mkOptionType {
    name = "bool";
    description = "boolean";
    check = isBool;
    merge = mergeEqualOption;
  };

  int = mkOptionType {
    name = "int";
    description = "signed integer";
    check = isInt;
    merge = mergeEqualOption;
  };

  port = ints.u16;

  float = mkOptionType {
    name = "float";
    description = "floating point number";
    check = isFloat;
    merge = mergeEqualOption;
  };

  number = either int float;

  str = mkOptionType {
    name = "str";
    description = "string";
    check = isString;
    merge = mergeEqualOption;
  };

  nonEmptyStr = mkOptionType {
    name = "nonEmptyStr";
    description = "non-empty string";
    check = x: isString x && match "[ \t\n]*" x == null;
    merge = mergeEqualOption;
  };

  singleLineStr = mkOptionType {
    name = "singleLineStr";
    description = "(optionally newline-terminated) single-line string";
    check = x: isString x && match "[^\n\r]*\n?" x != null;
    merge = loc: defs: lib.removeSuffix "\n" (mergeEqualOption loc defs);
  };

  strMatching = pattern: mkOptionType {
    name = "strMatching ${toJSON pattern}";
    description = "string matching the pattern ${pattern}";
    check = x: isString x && match pattern x != null;
    merge = mergeEqualOption;
  };

  # A value written into /etc/passwd, /etc/group or /etc/shadow, where a colon
  # or a newline would break the line apart (NixOS's types.passwdEntry).
  passwdEntry = entryType: entryType // {
    name = "passwdEntry ${entryType.name}";
    description = "${entryType.description}, not containing newlines or colons";
    check = x: entryType.check x && match "[^:\n]*" x != null;
  };

  lines = mkOptionType {
    name = "lines";
    description = "strings concatenated with \"\\n\"";
    check = isString;
    merge = loc: defs: concatStringsSep "\n" (map (d: d.value) defs);
  };

  commas = mkOptionType {
    name = "commas";
    description = "strings concatenated with \",\"";
    check = isString;
    merge = loc: defs: concatStringsSep "," (map (d: d.value) defs);
  };

  path = mkOptionType {
    name = "path";
    description = "path";
    check = x: isPath x || (isString x && substring 0 1 x == "/");
    merge = mergeEqualOption;
  };

  package = mkOptionType {
    name = "package";
    description = "package";
    check = x: lib.isDerivation x || (isString x && substring 0 1 x == "/");
    merge = mergeOneOption;
  };

  attrs = mkOptionType {
    name = "attrs";
    description = "attribute set";
    check = isAttrs;
    merge = loc: defs: lib.foldl' (acc: d: acc // d.value) { } defs;
  };

  enum = values: mkOptionType {
    name = "enum";
    description =
      if values == [ ] then "impossible (empty enum)"
      else if length values == 1 then "value ${showValue (head values)} (singular enum)"
      else "one of ${concatStringsSep ", " (map showValue values)}";
    check = x: elem x values;
    merge = mergeEqualOption;
  };

  nullOr = elemType: mkOptionType {
    name = "nullOr";
    description = "null or ${elemType.description}";
    check = x: x == null || elemType.check x;
    merge = loc: defs:
      let nulls = filter (d: d.value == null) defs; in
      if length nulls == length defs then null
      else if nulls != [ ] then
        throw "The option `${showOption loc}' is defined both null and not null, in ${showFiles (map (d: d.file) defs)}."
      else elemType.merge loc defs;
  };

  either = t1: t2: mkOptionType {
    name = "either";
    description = "${t1.description} or ${t2.description}";
    check = x: t1.check x || t2.check x;
    merge = loc: defs:
      if all (d: t1.check d.value) defs then t1.merge loc defs
      else if all (d: t2.check d.value) defs then t2.merge loc defs
      else mergeOneOption loc defs;
  };

  oneOf = ts: lib.foldl' either (head ts) (lib.drop 1 ts);

  # Lists concatenate; each element is checked (and merged, for submodules)
  # on its own, so errors point at the entry.
  listOf = elemType: mkOptionType {
    name = "listOf";
    description = "list of ${elemType.description}";
    check = isList;
    merge = loc: defs:
      map (x: x.value) (filter (x: x ? value) (concatLists (imap1
        (n: def: imap1
          (m: value: (mergeDefinitions
            (loc ++ [ "[definition ${toString n}-entry ${toString m}]" ])
            elemType
            [ { inherit (def) file; inherit value; } ]).optionalValue)
          def.value)
        defs)));
    inherit elemType;
  };

  nonEmptyListOf = elemType: listOf elemType // {
    description = "non-empty list of ${elemType.description}";
    check = x: isList x && x != [ ];
  };

  # attrsOf merges the definitions of each attribute; attributes whose
  # definitions are all conditioned away (mkIf false) are left out.
  attrsOf = elemType: mkOptionType {
    name = "attrsOf";
    description = "attribute set of ${elemType.description}";
    check = isAttrs;
    merge = loc: defs:
      mapAttrs (_: v: v.value) (lib.filterAttrs (_: v: v ? value)
        (zipAttrsWith (name: defs: (mergeDefinitions (loc ++ [ name ]) elemType defs).optionalValue)
          (map (def: mapAttrs (_: value: { inherit (def) file; inherit value; }) def.value) defs)));
    inherit elemType;
  };

  # lazyAttrsOf does not evaluate conditions to know its attribute names.
  lazyAttrsOf = elemType: mkOptionType {
    name = "lazyAttrsOf";
    description = "lazy attribute set of ${elemType.description}";
    check = isAttrs;
    merge = loc: defs:
      zipAttrsWith (name: defs: (mergeDefinitions (loc ++ [ name ]) elemType defs).mergedValue)
        (map (def: mapAttrs (_: value: { inherit (def) file; inherit value; }) def.value) defs);
    inherit elemType;
  };

  # A submodule is a nested module evaluation: its declarations come from
  # `modules', each definition becomes a module of its own, and `name' is
  # the attribute name when it sits in an attrsOf.
  submoduleWith = { modules, specialArgs ? { } }: mkOptionType {
    name = "submodule";
    description = "submodule";
    check = x: isAttrs x || isFunction x || isPath x;
    merge = loc: defs:
      removeAttrs
        (lib.evalModules {
          prefix = loc;
          specialArgs = specialArgs // { name = last loc; };
          modules = modules ++ map
            (def:
              if isFunction def.value || isPath def.value
              then { _file = def.file; imports = [ def.value ]; }
              else { _file = def.file; config = def.value; })
            defs;
        }).config
        [ "_module" ];
    inherit modules;
  };

  submodule = modules: submoduleWith { modules = toList modules; };
}
