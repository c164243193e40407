"""`--wait`: poll migration records until they settle, with a tqdm bar per migration."""

import time

from tqdm import tqdm

from vmmig.db import states

# A migration stops being waited for once it ends or someone holds it.
SETTLED = states.TERMINAL | {states.HELD}
UNSUCCESSFUL = frozenset((states.FAILED, states.CANCELLED, states.ERROR))
BAR_FORMAT = '{desc}: {percentage:3.0f}%|{bar}| {n_fmt}{unit} sent{postfix}'


def _size(num):
    return tqdm.format_sizeof(num or 0, suffix='B', divisor=1024)


class MigrationBar(object):
    """One migration's bar: bytes sent out of what is left, dirty rate, ETA.

    The ETA divides the bytes remaining by the rate observed between two
    polls (smoothed), not by the link speed: pre-copy resends dirty pages.
    """

    SMOOTHING = 0.3

    def __init__(self, record, stream, enabled, position=0, clock=time.monotonic):
        self.clock = clock
        self.rate = None
        self._last = None
        self.bar = tqdm(total=1, file=stream, disable=not enabled, position=position,
                        leave=True, unit='B', unit_scale=True, unit_divisor=1024,
                        dynamic_ncols=True, bar_format=BAR_FORMAT,
                        desc='%s [%s]' % (record.get('instance'), record.get('id')))

    def update(self, record):
        processed = record.get('bytes_processed') or 0
        remaining = record.get('bytes_remaining')
        now = self.clock()
        if self._last is not None and now > self._last[0] and processed >= self._last[1]:
            observed = (processed - self._last[1]) / (now - self._last[0])
            self.rate = observed if self.rate is None else (
                self.SMOOTHING * observed + (1 - self.SMOOTHING) * self.rate)
        self._last = (now, processed)

        if remaining is not None:
            total = processed + remaining
        else:
            total = record.get('bytes_total') or processed
        self.bar.total = max(total, 1)
        self.bar.n = processed if total else (1 if record.get('state') in SETTLED else 0)
        self.bar.set_postfix_str(self.describe(record), refresh=False)
        self.bar.refresh()

    def describe(self, record):
        parts = [record.get('state') or '?']
        if record.get('bytes_total'):
            parts.append('RAM+disk %s' % _size(record['bytes_total']))
        if record.get('bytes_remaining') is not None:
            parts.append('%s left' % _size(record['bytes_remaining']))
        if record.get('disk_remaining'):
            parts.append('disk %s left' % _size(record['disk_remaining']))
        if record.get('dirty_rate'):
            parts.append('dirtying %s/s' % _size(record['dirty_rate']))
        if record.get('iteration'):
            parts.append('iteration %s' % record['iteration'])
        if record.get('downtime_ms') is not None and record.get('state') in states.TERMINAL:
            parts.append('downtime %s ms' % record['downtime_ms'])
        eta = self.eta(record)
        if eta is not None:
            parts.append('ETA %s' % tqdm.format_interval(eta))
        if record.get('reason') and record.get('state') in UNSUCCESSFUL:
            parts.append(record['reason'])
        return ', '.join(parts)

    def eta(self, record):
        remaining = record.get('bytes_remaining')
        if record.get('state') in SETTLED or not remaining or not self.rate:
            return None
        return remaining / self.rate

    def close(self):
        self.bar.close()


def wait(conductor, migrations, stream, enabled, interval=1.0, until=SETTLED,
         sleep=time.sleep, clock=time.monotonic):
    """Poll ``migrations`` (ids) until each is in ``until``; return the last records."""
    records, bars = {}, {}
    pending = list(migrations)
    try:
        for position, ident in enumerate(migrations):
            records[ident] = conductor.migration_get(ident)
            bars[ident] = MigrationBar(records[ident], stream, enabled, position, clock)
        while True:
            for ident in list(pending):
                bars[ident].update(records[ident])
                if records[ident].get('state') in until:
                    pending.remove(ident)
            if not pending:
                break
            sleep(interval)
            for ident in pending:
                records[ident] = conductor.migration_get(ident)
    finally:
        for bar in bars.values():
            bar.close()
    return [records[ident] for ident in migrations]


def unsuccessful(records):
    return [r for r in records if r.get('state') in UNSUCCESSFUL]
