using SmartOS.Cli.Observe;
using SmartOS.Zones;

namespace SmartOS.Cli.Scenario;

/// <summary>
/// What a scenario run keeps for its report (smartos run --report, --plot: tools/Report/): a
/// LinkSeries per host, sampled on multiples of the interval, and the files the run wrote.
///
/// The runner samples between its steps rather than by a timer on each host (LinkSeries rule 1): it
/// runs the world to each due time, samples every host there, and goes on. A timer would keep the
/// world from going idle, so a command that waits for nothing would run to its timeout instead of
/// being reported at once. A world of one cell (one host, or hosts joined by zero-delay wires) runs
/// event by event, so stopping at sample times changes nothing it does; a world that runs in windows
/// (hosts joined by wires with a delay, kernel/Timeline.cs rule 4) ends a window at each sample time
/// too, so there a command's end may be noticed a window sooner than in a run without a report: the
/// same script still gives the same bytes on every run with the same options.
/// </summary>
public sealed partial class ScenarioRunner
{
    private readonly List<LinkSeries> _series = [];
    private readonly List<string> _files = [];
    private readonly HashSet<string> _fileSet = new(StringComparer.Ordinal);
    private long _sampleInterval;
    private int _sampleCapacity;

    /// <summary>Samples every host's links every <paramref name="intervalNs"/> of virtual time from
    /// here on, keeping <paramref name="capacity"/> samples a link. Call before <see cref="Run"/>.</summary>
    public void ObserveLinks(long intervalNs, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(intervalNs, 1);
        if (_sampleInterval != 0) throw new InvalidOperationException("links are already observed");
        _sampleInterval = intervalNs;
        _sampleCapacity = capacity;
        foreach (var h in _world.Hosts) Observe(h);
    }

    /// <summary>The series of each host, in the order the hosts were made (empty unless observed).</summary>
    public IReadOnlyList<LinkSeries> Series => _series;

    /// <summary>Full paths of the files commands created for data (capture files) or that `&gt; FILE`
    /// wrote, in the order first written.</summary>
    public IReadOnlyList<string> WrittenFiles => _files;

    private void NoteFile(string path)
    {
        if (_fileSet.Add(path)) _files.Add(path);
    }

    private void Observe(Host host)
    {
        if (_sampleInterval == 0) return;
        var series = new LinkSeries(host, _sampleInterval, _sampleCapacity);
        _series.Add(series);
        if (series.NextSampleTime == _world.Scheduler.Now) series.Sample(_world.Scheduler.Now);
    }

    /// <summary>The earliest due sample of any host (long.MaxValue when none is observed).</summary>
    private long NextSample()
    {
        long next = long.MaxValue;
        foreach (var s in _series) next = Math.Min(next, s.NextSampleTime);
        return next;
    }

    private void SampleDue(long time)
    {
        foreach (var s in _series)
            if (s.NextSampleTime <= time) s.Sample(time);
    }

    /// <summary>Scheduler.RunFor, stopping at each due sample.</summary>
    private void RunFor(long duration)
    {
        long target = _world.Scheduler.Now + duration;
        for (long next = NextSample(); next <= target; next = NextSample())
        {
            _world.Scheduler.RunUntil(next);
            SampleDue(next);
        }
        _world.Scheduler.RunUntil(target);
    }

    /// <summary>Scheduler.RunUntil(done, deadline), stopping at each due sample; it returns, as that
    /// does, when the condition holds, the deadline passes, or nothing is left to run.</summary>
    private bool RunUntil(Func<bool> done, long deadline)
    {
        while (true)
        {
            long next = NextSample();
            if (next > deadline) return _world.Scheduler.RunUntil(done, deadline);
            if (_world.Scheduler.RunUntil(done, next)) return true;
            if (_world.Scheduler.NextEventTime == long.MaxValue) return false; // idle: nothing will change
            _world.Scheduler.RunUntil(next);
            SampleDue(next);
        }
    }

    /// <summary>A last sample at the end of the run, so the charts reach the end line's time.</summary>
    private void SampleEnd()
    {
        long now = _world.Scheduler.Now;
        foreach (var s in _series)
            if (s.LastSampleTime < now) s.Sample(now);
    }
}
