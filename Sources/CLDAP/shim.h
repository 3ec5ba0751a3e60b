// OpenLDAP's client library. LDAP_DEPRECATED stays undefined on purpose: the
// deprecated *_s calls (ldap_simple_bind_s…) hide the empty-password trap.
#include <sys/time.h>
#include <lber.h>
#include <ldap.h>
