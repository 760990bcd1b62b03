// Package nixos is NixOS's own container@.service as the test host can run it: the unit
// (container@.service), the scripts it runs (pre-start, start, container-init,
// post-start, reload) and install.sh, which puts them in place as a NixOS host has them.
// Its tests install the template in the test host and drive nixcfs and the bundled guest
// through it, the way a NixOS host would. There is no Go code here but the tests.
package nixos
