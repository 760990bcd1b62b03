# A small stand-in for nixpkgs' `lib`: the helpers a NixOS administrator uses
# in a configuration.nix (`with lib;`), plus the module system (./modules.nix)
# and option types (./types.nix). Pure Nix, no nixpkgs.
let
  lib = builtins.foldl' (acc: part: acc // part) { } [
    helpers
    (import ./modules.nix lib)
    { types = import ./types.nix lib; }
  ];

  inherit (builtins)
    attrNames concatLists concatMap concatStringsSep elem elemAt filter foldl'
    genList head isAttrs isList isString length listToAttrs mapAttrs
    replaceStrings stringLength substring tail toString;

  helpers = rec {
    # Builtins that nixpkgs' lib re-exports under the same names.
    inherit (builtins)
      add all any attrNames attrValues catAttrs concatLists concatMap
      concatStringsSep deepSeq div elem elemAt filter foldl' fromJSON
      functionArgs genList getAttr groupBy hasAttr head intersectAttrs isAttrs
      isBool isFloat isFunction isInt isList isPath isString length listToAttrs
      mapAttrs match partition removeAttrs replaceStrings seq sort split
      stringLength sub substring tail toJSON toString trace tryEval typeOf
      zipAttrsWith;

    # trivial
    id = x: x;
    const = x: _: x;
    flip = f: a: b: f b a;
    pipe = foldl' (x: f: f x);
    fix = f: let x = f x; in x;
    boolToString = b: if b then "true" else "false";
    max = a: b: if a > b then a else b;
    min = a: b: if a < b then a else b;
    mod = a: b: a - (b * (a / b));
    isDerivation = x: isAttrs x && x.type or null == "derivation";
    mdDoc = id;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };

    # lists
    optional = cond: elem: if cond then [ elem ] else [ ];
    optionals = cond: elems: if cond then elems else [ ];
    toList = x: if isList x then x else [ x ];
    imap0 = f: list: genList (n: f n (elemAt list n)) (length list);
    imap1 = f: list: genList (n: f (n + 1) (elemAt list n)) (length list);
    range = first: last:
      if first > last then [ ] else genList (n: first + n) (last - first + 1);
    last = list: elemAt list (length list - 1);
    init = list: genList (elemAt list) (length list - 1);
    take = count: list:
      genList (elemAt list) (if count < length list then count else length list);
    drop = count: list:
      let n = length list - count; in
      genList (i: elemAt list (i + count)) (if n < 0 then 0 else n);
    flatten = x: if isList x then concatMap flatten x else [ x ];
    unique = foldl' (acc: e: if elem e acc then acc else acc ++ [ e ]) [ ];
    remove = e: filter (x: x != e);
    reverseList = list:
      let l = length list; in genList (n: elemAt list (l - n - 1)) l;
    findFirst = pred: default: list:
      let found = filter pred list; in if found == [ ] then default else head found;
    count = pred: foldl' (c: x: if pred x then c + 1 else c) 0;
    foldr = op: nul: list:
      let
        len = length list;
        fold' = n: if n == len then nul else op (elemAt list n) (fold' (n + 1));
      in
      fold' 0;
    fold = foldr;
    forEach = xs: f: map f xs;
    sublist = start: count: list: take count (drop start list);
    zipLists = a: b:
      genList (n: { fst = elemAt a n; snd = elemAt b n; })
        (if length a < length b then length a else length b);

    # attribute sets
    nameValuePair = name: value: { inherit name value; };
    mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
    mapAttrs' = f: attrs: listToAttrs (mapAttrsToList f attrs);
    filterAttrs = pred: attrs:
      listToAttrs (concatMap
        (name: let value = attrs.${name}; in
          if pred name value then [ { inherit name value; } ] else [ ])
        (attrNames attrs));
    genAttrs = names: f: listToAttrs (map (name: { inherit name; value = f name; }) names);
    optionalAttrs = cond: attrs: if cond then attrs else { };
    attrByPath = path: default: set:
      if path == [ ] then set
      else if isAttrs set && set ? ${head path}
      then attrByPath (tail path) default set.${head path}
      else default;
    getAttrFromPath = path: set:
      attrByPath path (throw "cannot find attribute `${concatStringsSep "." path}'") set;
    hasAttrByPath = path: set:
      path == [ ] || (isAttrs set && set ? ${head path} && hasAttrByPath (tail path) set.${head path});
    setAttrByPath = path: value:
      if path == [ ] then value else { ${head path} = setAttrByPath (tail path) value; };
    recursiveUpdate = lhs: rhs:
      lhs // mapAttrs
        (name: value:
          if isAttrs value && isAttrs (lhs.${name} or null) && !isDerivation value
          then recursiveUpdate lhs.${name} value
          else value)
        rhs;
    foldAttrs = op: nul: list_of_attrs:
      foldr (n: a: foldr (name: o: o // { ${name} = op n.${name} (a.${name} or nul); }) a (attrNames n)) { } list_of_attrs;
    zipAttrs = builtins.zipAttrsWith (name: values: values);
    concatMapAttrs = f: attrs: foldl' (acc: name: acc // f name attrs.${name}) { } (attrNames attrs);
    attrsToList = mapAttrsToList nameValuePair;

    # strings
    optionalString = cond: string: if cond then string else "";
    concatStrings = concatStringsSep "";
    concatMapStrings = f: list: concatStringsSep "" (map f list);
    concatMapStringsSep = sep: f: list: concatStringsSep sep (map f list);
    concatLines = list: concatStrings (map (s: s + "\n") list);
    hasPrefix = pref: str: substring 0 (stringLength pref) str == pref;
    hasSuffix = suffix: content:
      let
        lenContent = stringLength content;
        lenSuffix = stringLength suffix;
      in
      lenContent >= lenSuffix && substring (lenContent - lenSuffix) lenContent content == suffix;
    hasInfix = infix: content:
      builtins.match ".*${escapeRegex infix}.*" content != null;
    removePrefix = prefix: str:
      if hasPrefix prefix str
      then substring (stringLength prefix) (stringLength str - stringLength prefix) str
      else str;
    removeSuffix = suffix: str:
      if hasSuffix suffix str
      then substring 0 (stringLength str - stringLength suffix) str
      else str;
    splitString = sep: str:
      filter isString (builtins.split (escapeRegex sep) str);
    stringToCharacters = s: genList (p: substring p 1 s) (stringLength s);
    escape = list: replaceStrings list (map (c: "\\${c}") list);
    escapeRegex = escape (stringToCharacters "\\[{()^$?*+|.");
    escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    escapeNixString = s: escape [ "$" ] (builtins.toJSON s);
    toUpper = replaceStrings lowerChars upperChars;
    toLower = replaceStrings upperChars lowerChars;
    lowerChars = stringToCharacters "abcdefghijklmnopqrstuvwxyz";
    upperChars = stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    fixedWidthString = width: filler: str:
      let strw = stringLength str; in
      if strw >= width then str
      else fixedWidthString width filler (filler + str);
    fixedWidthNumber = width: n: fixedWidthString width "0" (toString n);
    trim = s:
      let m = builtins.match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s; in
      if m == null then "" else head m;

    strings = { inherit concatStrings concatMapStrings concatMapStringsSep concatLines hasPrefix hasSuffix hasInfix removePrefix removeSuffix splitString escape escapeShellArg escapeNixString toUpper toLower optionalString trim; };
    lists = { inherit optional optionals toList imap0 imap1 range last init take drop flatten unique remove reverseList findFirst count foldr forEach sublist zipLists; };
    attrsets = { inherit nameValuePair mapAttrsToList mapAttrs' filterAttrs genAttrs optionalAttrs attrByPath getAttrFromPath hasAttrByPath setAttrByPath recursiveUpdate zipAttrs concatMapAttrs; };
    trivial = { inherit id const flip pipe fix boolToString max min mod; };
  };
in
lib
