/* tr_status_t descriptions and version queries. */
#include "base/base.h"

const char *tr_status_string(tr_status_t status)
{
    switch (status) {
    case TR_OK:                   return "success";
    case TR_ERR_INVALID_ARG:      return "invalid argument";
    case TR_ERR_NOT_INITIALIZED:  return "taskray is not initialized";
    case TR_ERR_ALREADY_INIT:     return "taskray is already initialized";
    case TR_ERR_WRONG_MODE:       return "not allowed in this mode or context";
    case TR_ERR_UNKNOWN_FUNCTION: return "unknown remote function";
    case TR_ERR_EXISTS:           return "already registered";
    case TR_ERR_NO_MEMORY:        return "out of host memory";
    case TR_ERR_TIMEOUT:          return "timed out";
    case TR_ERR_REF_RELEASED:     return "the handle was released or is not valid";
    case TR_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case TR_ERR_TYPE:             return "value has the wrong size for this type";
    case TR_ERR_UNSCHEDULABLE:    return "no rank has the resources the task needs";
    case TR_ERR_SHUTDOWN:         return "taskray is shutting down";
    case TR_ERR_TASK_FAILED:      return "task failed";
    case TR_ERR_TASK_CANCELLED:   return "task was cancelled";
    case TR_ERR_TASK_RETRY:       return "task asked to be retried";
    case TR_ERR_TASK_STARTED:     return "task already started";
    case TR_ERR_DEPENDENCY:       return "dependency could not be resolved";
    case TR_ERR_OUT_OF_MEMORY:    return "object store is full";
    case TR_ERR_OBJECT_LOST:      return "object lost";
    case TR_ERR_OBJECT_CORRUPT:   return "object is corrupt";
    case TR_ERR_OBJECT_TOO_LARGE: return "object is larger than the object store";
    case TR_ERR_ACTOR_DIED:       return "actor died";
    case TR_ERR_ACTOR_NOT_FOUND:  return "no live actor has that name";
    case TR_ERR_UNKNOWN_METHOD:   return "the actor class has no such method";
    case TR_ERR_MISMATCH:         return "ranks run different binaries (remote function tables differ)";
    case TR_ERR_BOOTSTRAP:        return "bootstrap failed";
    case TR_ERR_TRANSPORT:        return "transport error";
    case TR_ERR_WORKER_DIED:      return "worker rank died";
    case TR_ERR_PROTOCOL:         return "malformed message from a peer";
    case TR_ERR_SYSTEM:           return "system call failed";
    case TR_ERR_TOPOLOGY:         return "topology discovery failed";
    }
    return "unknown status";
}

const char *tr_version(void) { return TR_VERSION_STRING; }
unsigned tr_api_version(void) { return TR_API_VERSION; }
