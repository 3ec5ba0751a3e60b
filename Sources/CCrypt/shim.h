// libxcrypt: crypt_rn for every crypt(3) hash format (bcrypt, sha-crypt, md5-crypt, DES).
// crypt_rn, unlike crypt_r, returns NULL on failure instead of a "*0" token.
#include <crypt.h>
