namespace SmartOS.Storage;

/// <summary>
/// Who is charged for the blocks of an object set (ObjectSet, ObjectTree): Born when a sync writes a
/// block, Kill when a pointer to it is replaced or dropped, Reserve before a write dirties new blocks.
/// The pool's meta object set frees a killed block at once (deferred to the commit, Pool.cs rule 6); a
/// dataset decides between freeing it and keeping it on its dead list (Dsl.cs rule 3).
/// </summary>
internal abstract class BlockOwner
{
    /// <summary>What errors name (a dataset's name; the pool's for the MOS).</summary>
    public abstract string Name { get; }

    public virtual bool IsReadOnly => false;

    /// <summary>The checksum for blocks written on this owner's behalf; null for the pool's.</summary>
    public virtual ChecksumKind? Checksum => null;

    /// <summary>The compression for data blocks written on this owner's behalf; null for the object set's own setting.</summary>
    public virtual CompressionSetting? Compression => null;

    /// <summary>The intent log that records this owner's changes (IntentLog.cs); null where there is none (the MOS, snapshots).</summary>
    public virtual IntentLog? Log => null;

    public abstract void Born(in BlockPointer bp);

    public abstract void Kill(in BlockPointer bp);

    /// <summary>The owner's object set has its first change since its last sync.</summary>
    public virtual void Dirtied() { }

    /// <summary>Room for bytes more of dirty data in this txg, or EDQUOT/ENOSPC with nothing reserved.</summary>
    public virtual StorageResult Reserve(long bytes) => StorageResult.Success;

    /// <summary>True when bytes more do not fit now while the open txg's changes hold room (ZFS's
    /// ERESTART from dsl_dir_tempreserve_space): committing first may free some, and only a refusal
    /// after that is a real EDQUOT/ENOSPC.</summary>
    public virtual bool RoomIsInFlight(long bytes) => false;
}

/// <summary>The pool's meta object set: never snapshotted, so a killed block is simply freed.</summary>
internal sealed class MosOwner(Pool pool) : BlockOwner
{
    public override string Name => pool.Name;

    /// <summary>Bytes the MOS's blocks take (set from the space maps at open, before datasets claim theirs).</summary>
    public long Bytes { get; set; }

    public override void Born(in BlockPointer bp) => Bytes += pool.AllocatedSize(bp);

    public override void Kill(in BlockPointer bp)
    {
        Bytes -= pool.AllocatedSize(bp);
        pool.FreeBlock(bp);
    }
}
