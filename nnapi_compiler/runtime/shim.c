/*
 * libneuralnetworks.so for the host: every NNAPI function the PyTorch runtime dlsym()s,
 * forwarded to a table of callbacks that Python installs (nnapi_compiler/runtime/shim.py).
 *
 * The library has no state beyond the pointer to that table. With no table installed, functions
 * returning int report ANEURALNETWORKS_UNAVAILABLE_DEVICE and the void *_free functions do
 * nothing, so a call that arrives before installation or after uninstallation fails cleanly.
 *
 * Built with SONAME "libneuralnetworks.so" and loaded by ctypes before torch's first dlopen of
 * that name, which then resolves to this already-loaded object.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NNC_EXPORT __attribute__((visibility("default")))
#define NNC_UNAVAILABLE_DEVICE 9 /* ANEURALNETWORKS_UNAVAILABLE_DEVICE */

/* The NDK's opaque handle types: only ever passed around as pointers. */
typedef struct ANeuralNetworksModel ANeuralNetworksModel;
typedef struct ANeuralNetworksCompilation ANeuralNetworksCompilation;
typedef struct ANeuralNetworksExecution ANeuralNetworksExecution;
typedef struct ANeuralNetworksEvent ANeuralNetworksEvent;
typedef struct ANeuralNetworksMemory ANeuralNetworksMemory;
typedef struct ANeuralNetworksDevice ANeuralNetworksDevice;

typedef struct ANeuralNetworksOperandType {
    int32_t type;
    uint32_t dimensionCount;
    const uint32_t *dimensions;
    float scale;
    int32_t zeroPoint;
} ANeuralNetworksOperandType;

/*
 * X(return type, exported name, table field, parameter list, argument list).
 * The order of this list is the layout of struct nnc_callbacks; shim.py declares the same
 * fields in the same order and checks it against nnc_callback_names() when it loads us.
 */
#define NNC_FUNCTIONS(X) \
    X(int, ANeuralNetworks_getDeviceCount, getDeviceCount, \
      (uint32_t *numDevices), (numDevices)) \
    X(int, ANeuralNetworks_getDevice, getDevice, \
      (uint32_t devIndex, ANeuralNetworksDevice **device), (devIndex, device)) \
    X(int, ANeuralNetworksDevice_getName, Device_getName, \
      (const ANeuralNetworksDevice *device, const char **name), (device, name)) \
    X(int, ANeuralNetworksDevice_getVersion, Device_getVersion, \
      (const ANeuralNetworksDevice *device, const char **version), (device, version)) \
    X(int, ANeuralNetworksDevice_getFeatureLevel, Device_getFeatureLevel, \
      (const ANeuralNetworksDevice *device, int64_t *featureLevel), (device, featureLevel)) \
    X(int, ANeuralNetworksModel_getSupportedOperationsForDevices, \
      Model_getSupportedOperationsForDevices, \
      (const ANeuralNetworksModel *model, const ANeuralNetworksDevice *const *devices, \
       uint32_t numDevices, bool *supportedOps), \
      (model, devices, numDevices, supportedOps)) \
    X(int, ANeuralNetworksCompilation_createForDevices, Compilation_createForDevices, \
      (ANeuralNetworksModel *model, const ANeuralNetworksDevice *const *devices, \
       uint32_t numDevices, ANeuralNetworksCompilation **compilation), \
      (model, devices, numDevices, compilation)) \
    X(int, ANeuralNetworksExecution_compute, Execution_compute, \
      (ANeuralNetworksExecution *execution), (execution)) \
    X(int, ANeuralNetworksMemory_createFromFd, Memory_createFromFd, \
      (size_t size, int protect, int fd, size_t offset, ANeuralNetworksMemory **memory), \
      (size, protect, fd, offset, memory)) \
    X(void, ANeuralNetworksMemory_free, Memory_free, \
      (ANeuralNetworksMemory *memory), (memory)) \
    X(int, ANeuralNetworksModel_create, Model_create, \
      (ANeuralNetworksModel **model), (model)) \
    X(void, ANeuralNetworksModel_free, Model_free, \
      (ANeuralNetworksModel *model), (model)) \
    X(int, ANeuralNetworksModel_finish, Model_finish, \
      (ANeuralNetworksModel *model), (model)) \
    X(int, ANeuralNetworksModel_addOperand, Model_addOperand, \
      (ANeuralNetworksModel *model, const ANeuralNetworksOperandType *type), (model, type)) \
    X(int, ANeuralNetworksModel_setOperandValue, Model_setOperandValue, \
      (ANeuralNetworksModel *model, int32_t index, const void *buffer, size_t length), \
      (model, index, buffer, length)) \
    X(int, ANeuralNetworksModel_setOperandValueFromMemory, Model_setOperandValueFromMemory, \
      (ANeuralNetworksModel *model, int32_t index, const ANeuralNetworksMemory *memory, \
       size_t offset, size_t length), \
      (model, index, memory, offset, length)) \
    X(int, ANeuralNetworksModel_addOperation, Model_addOperation, \
      (ANeuralNetworksModel *model, int32_t type, uint32_t inputCount, const uint32_t *inputs, \
       uint32_t outputCount, const uint32_t *outputs), \
      (model, type, inputCount, inputs, outputCount, outputs)) \
    X(int, ANeuralNetworksModel_identifyInputsAndOutputs, Model_identifyInputsAndOutputs, \
      (ANeuralNetworksModel *model, uint32_t inputCount, const uint32_t *inputs, \
       uint32_t outputCount, const uint32_t *outputs), \
      (model, inputCount, inputs, outputCount, outputs)) \
    X(int, ANeuralNetworksModel_relaxComputationFloat32toFloat16, \
      Model_relaxComputationFloat32toFloat16, \
      (ANeuralNetworksModel *model, bool allow), (model, allow)) \
    X(int, ANeuralNetworksCompilation_create, Compilation_create, \
      (ANeuralNetworksModel *model, ANeuralNetworksCompilation **compilation), \
      (model, compilation)) \
    X(void, ANeuralNetworksCompilation_free, Compilation_free, \
      (ANeuralNetworksCompilation *compilation), (compilation)) \
    X(int, ANeuralNetworksCompilation_setPreference, Compilation_setPreference, \
      (ANeuralNetworksCompilation *compilation, int32_t preference), (compilation, preference)) \
    X(int, ANeuralNetworksCompilation_finish, Compilation_finish, \
      (ANeuralNetworksCompilation *compilation), (compilation)) \
    X(int, ANeuralNetworksExecution_create, Execution_create, \
      (ANeuralNetworksCompilation *compilation, ANeuralNetworksExecution **execution), \
      (compilation, execution)) \
    X(void, ANeuralNetworksExecution_free, Execution_free, \
      (ANeuralNetworksExecution *execution), (execution)) \
    X(int, ANeuralNetworksExecution_setInput, Execution_setInput, \
      (ANeuralNetworksExecution *execution, int32_t index, \
       const ANeuralNetworksOperandType *type, const void *buffer, size_t length), \
      (execution, index, type, buffer, length)) \
    X(int, ANeuralNetworksExecution_setInputFromMemory, Execution_setInputFromMemory, \
      (ANeuralNetworksExecution *execution, int32_t index, \
       const ANeuralNetworksOperandType *type, const ANeuralNetworksMemory *memory, \
       size_t offset, size_t length), \
      (execution, index, type, memory, offset, length)) \
    X(int, ANeuralNetworksExecution_setOutput, Execution_setOutput, \
      (ANeuralNetworksExecution *execution, int32_t index, \
       const ANeuralNetworksOperandType *type, void *buffer, size_t length), \
      (execution, index, type, buffer, length)) \
    X(int, ANeuralNetworksExecution_setOutputFromMemory, Execution_setOutputFromMemory, \
      (ANeuralNetworksExecution *execution, int32_t index, \
       const ANeuralNetworksOperandType *type, const ANeuralNetworksMemory *memory, \
       size_t offset, size_t length), \
      (execution, index, type, memory, offset, length)) \
    X(int, ANeuralNetworksExecution_startCompute, Execution_startCompute, \
      (ANeuralNetworksExecution *execution, ANeuralNetworksEvent **event), \
      (execution, event)) \
    X(int, ANeuralNetworksEvent_wait, Event_wait, \
      (ANeuralNetworksEvent *event), (event)) \
    X(void, ANeuralNetworksEvent_free, Event_free, \
      (ANeuralNetworksEvent *event), (event)) \
    X(int, ANeuralNetworksExecution_getOutputOperandRank, Execution_getOutputOperandRank, \
      (ANeuralNetworksExecution *execution, int32_t index, uint32_t *rank), \
      (execution, index, rank)) \
    X(int, ANeuralNetworksExecution_getOutputOperandDimensions, \
      Execution_getOutputOperandDimensions, \
      (ANeuralNetworksExecution *execution, int32_t index, uint32_t *dimensions), \
      (execution, index, dimensions))

#define NNC_FIELD(ret, cname, field, params, args) ret(*field) params;
struct nnc_callbacks {
    NNC_FUNCTIONS(NNC_FIELD)
};

/* The only global state: the installed table, or NULL. */
static const struct nnc_callbacks *nnc_table;

static const struct nnc_callbacks *nnc_current(void) {
    return __atomic_load_n(&nnc_table, __ATOMIC_ACQUIRE);
}

NNC_EXPORT void nnc_install(const struct nnc_callbacks *table) {
    __atomic_store_n(&nnc_table, table, __ATOMIC_RELEASE);
}

#define NNC_NAME(ret, cname, field, params, args) #field ","
NNC_EXPORT const char *nnc_callback_names(void) {
    return NNC_FUNCTIONS(NNC_NAME);
}

#define NNC_CALL_int(field, args) \
    const struct nnc_callbacks *t = nnc_current(); \
    return (t != NULL && t->field != NULL) ? t->field args : NNC_UNAVAILABLE_DEVICE;
#define NNC_CALL_void(field, args) \
    const struct nnc_callbacks *t = nnc_current(); \
    if (t != NULL && t->field != NULL) t->field args;
#define NNC_DEFINE(ret, cname, field, params, args) \
    NNC_EXPORT ret cname params { NNC_CALL_##ret(field, args) }

NNC_FUNCTIONS(NNC_DEFINE)
