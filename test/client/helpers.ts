// Helpers of the client tests: wait for a client's state, within a deadline.
import type { AnyContract, ClientState, ContractClient } from '../../lib/client.js'
import { deadline } from '../plugin/helpers.js'

/** The next state `name` of the client (now, if it is in it), within a deadline. */
export function reach<C extends AnyContract> (client: ContractClient<C>, name: ClientState['state']): Promise<ClientState> {
  if (client.state.state === name) return Promise.resolve(client.state)
  return deadline(new Promise((resolve) => {
    const stop = client.onState((state) => { if (state.state === name) { stop(); resolve(state) } })
  }), `state ${name}`)
}
