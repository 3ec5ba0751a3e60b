// MIT Kerberos (Debian's libkrb5-dev): GSS-API for accepting SPNEGO/Kerberos tokens, and
// krb5 for `gatehouse kerberos test` (keytab entries, a ticket from the KDC). Debian links
// /usr/include/gssapi/*.h and /usr/include/krb5.h to the mit-krb5 copies, so no pkg-config
// (its -isystem flag is filtered out by SwiftPM).
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_ext.h>
#include <krb5.h>

// Macros Swift cannot import.
static inline int gatehouse_gss_error(OM_uint32 major) { return GSS_ERROR(major) != 0; }
static inline OM_uint32 gatehouse_gss_continue_needed(void) { return GSS_S_CONTINUE_NEEDED; }
static inline OM_uint32 gatehouse_gss_indefinite(void) { return GSS_C_INDEFINITE; }
static inline int gatehouse_gss_c_accept(void) { return GSS_C_ACCEPT; }
static inline int gatehouse_gss_c_initiate(void) { return GSS_C_INITIATE; }
static inline int gatehouse_gss_c_gss_code(void) { return GSS_C_GSS_CODE; }
static inline int gatehouse_gss_c_mech_code(void) { return GSS_C_MECH_CODE; }
static inline OM_uint32 gatehouse_gss_c_mutual_flag(void) { return GSS_C_MUTUAL_FLAG; }
// Global OIDs, read through functions: Swift treats the extern variables as shared mutable state.
static inline gss_OID gatehouse_nt_principal(void) { return (gss_OID)GSS_KRB5_NT_PRINCIPAL_NAME; }
static inline gss_OID gatehouse_nt_hostbased(void) { return GSS_C_NT_HOSTBASED_SERVICE; }
static inline gss_OID gatehouse_mech_krb5(void) { return (gss_OID)gss_mech_krb5; }
