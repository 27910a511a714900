// The inbound budget's token buckets, driven by explicit clock times (no timers).
import t from 'tap'
import { InboundBudget } from '../../lib/connection/budget.js'

t.test('messages: a burst of rate x burst, then the refill of each tick, capped', async (t) => {
  const budget = new InboundBudget({ messagesPerSecond: 10, bytesPerSecond: 0, burst: 2, policy: 'close' }, 0)
  let passed = 0
  while (budget.spend(1) === undefined) passed++
  t.equal(passed, 20, 'the burst')
  t.equal(budget.spend(1), 'messages')
  budget.refill(100) // 0.1 s at 10/s: one message
  t.equal(budget.spend(1), undefined)
  t.equal(budget.spend(1), 'messages')
  budget.refill(60_100) // a long silence refills to the bucket's size, not beyond
  passed = 0
  while (budget.spend(1) === undefined) passed++
  t.equal(passed, 20)
})

t.test('bytes: a message is paid whole or refused whole; one larger than the bucket never fits', async (t) => {
  const budget = new InboundBudget({ messagesPerSecond: 0, bytesPerSecond: 1000, burst: 1, policy: 'drop' }, 0)
  t.equal(budget.spend(600), undefined)
  t.equal(budget.spend(600), 'bytes', 'only 400 left')
  t.equal(budget.spend(400), undefined, 'the refused message took nothing')
  budget.refill(1000)
  t.equal(budget.spend(1001), 'bytes')
  t.equal(budget.spend(1000), undefined)
})

t.test('both buckets: a refused message spends from neither', async (t) => {
  const budget = new InboundBudget({ messagesPerSecond: 2, bytesPerSecond: 100, burst: 1, policy: 'close' }, 0)
  t.equal(budget.spend(150), 'bytes')
  t.equal(budget.spend(50), undefined)
  t.equal(budget.spend(50), undefined)
  t.equal(budget.spend(0), 'messages')
})
