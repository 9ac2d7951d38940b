"""What the Redis server pays for the pub/sub the channel layer uses, for the capacity model.

    .venv/bin/python -m presence_project.local_redis -- .venv/bin/python -m bench.redis_costs

- memory per subscribed channel (a process SUBSCRIBEs to the group of every friend its
  users follow): used_memory before and after one connection subscribes to many channels;
- CPU per PUBLISH as the number of subscribed connections (processes following the
  changed user) grows: the server's CPU time from /proc while messages are published to a
  channel that K connections read.

Prints a table; needs a local server (REDIS_URL) whose process this machine can read.
"""

import asyncio
import os
import sys

from redis import asyncio as aioredis

from bench import system

CHANNELS = 100_000
PUBLISHES = 20_000
SUBSCRIBERS = (1, 10, 50)


async def _memory_per_channel(url: str) -> float:
    client = aioredis.Redis.from_url(url)
    before = (await client.info("memory"))["used_memory"]
    pubsub = client.pubsub()
    for start in range(0, CHANNELS, 1000):
        await pubsub.subscribe(*(f"bench-costs:{i}" for i in range(start, start + 1000)))
    # The replies of the subscriptions, read so that none waits in a buffer.
    while await pubsub.get_message(timeout=0.2) is not None:
        pass
    after = (await client.info("memory"))["used_memory"]
    await pubsub.aclose()
    await client.aclose()
    return (after - before) / CHANNELS


async def _cpu_per_publish(url: str, pid: int, subscribers: int) -> float:
    readers = [aioredis.Redis.from_url(url).pubsub() for _ in range(subscribers)]
    for reader in readers:
        await reader.subscribe("bench-costs:hot")
        await reader.get_message(timeout=1)
    received = [0] * subscribers

    async def read(index: int) -> None:
        while received[index] < PUBLISHES:
            message = await readers[index].get_message(timeout=5)
            if message is None:
                return
            received[index] += 1

    publisher = aioredis.Redis.from_url(url)
    tasks = [asyncio.create_task(read(i)) for i in range(subscribers)]
    begun = system.cpu_seconds(pid)
    payload = b"x" * 200  # about one group message of the channel layer
    for start in range(0, PUBLISHES, 100):
        async with publisher.pipeline(transaction=False) as pipe:
            for _ in range(start, start + 100):
                pipe.publish("bench-costs:hot", payload)
            await pipe.execute()
    await asyncio.gather(*tasks)
    used = system.cpu_seconds(pid) - begun
    for reader in readers:
        await reader.aclose()
    await publisher.aclose()
    return used * 1e6 / PUBLISHES


async def main() -> None:
    url = os.environ["REDIS_URL"]
    client = aioredis.Redis.from_url(url)
    pid = int((await client.info("server"))["process_id"])
    await client.aclose()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"used_memory per subscribed channel: {await _memory_per_channel(url):.0f} bytes")
    for subscribers in SUBSCRIBERS:
        samples = []
        for _ in range(3):
            samples.append(await _cpu_per_publish(url, pid, subscribers))
            await asyncio.sleep(0.5)
        shown = ", ".join(f"{s:.1f}" for s in samples)
        print(f"Redis CPU per PUBLISH to {subscribers} subscribers: {shown} µs (3 runs)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
