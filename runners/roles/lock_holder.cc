// STUB — being written.
#include "runners/roles/role_common.h"

namespace lab::runners::roles {

int RunLockHolder(const RoleArgs& /*args*/) { return 2; }

}  // namespace lab::runners::roles
