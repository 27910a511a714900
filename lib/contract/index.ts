/** The wire contract: pure, importable by the server and a browser bundle alike. */
export { defineContract, isContract, ReservedType } from './contract.js'
export type {
  AnyContract, ClientMessage, ClientPayload, ClientType, Contract, ContractHandlers, ContractSpec, MessageOf, PayloadSchema,
  ReplyMessage, ReplyOf, RequestType, SchemaTable, ServerMessage, ServerPayload, ServerType, ServerWireMessage
} from './contract.js'
export { ContractUsageError, MessageErrorCode, requestIdOf, type InvalidMessageReply, type MessageIssue, type RequestId } from './errors.js'
